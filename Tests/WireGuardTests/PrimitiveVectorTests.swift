import Testing
@testable import WireGuardCrypto

/// Each primitive against its specification's published vector (byte for byte), through the OpenSSL
/// calls WireGuard's code makes.
@Suite struct PrimitiveVectorTests {
    static let sunscreen = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)

    @Test func blake2sOfABCIsRFC7693AppendixB() throws {
        #expect(hexString(try Blake2s.hash(Array("abc".utf8))) == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982")
    }

    @Test func blake2sHashesTheConcatenationOfItsParts() throws {
        #expect(try Blake2s.hash(Array("a".utf8), Array("bc".utf8)) == Blake2s.hash(Array("abc".utf8)))
    }

    /// blake2s-kat.txt of the BLAKE2 reference code, key 00..1f, inputs of 0 and 1 bytes.
    @Test func keyedBlake2sIsTheReferenceKAT() throws {
        let key = Array(UInt8(0)...UInt8(0x1f))
        #expect(hexString(try Blake2s.mac(key: key, outputCount: 32)) == "48a8997da407876b3d79c0d92325ad3b89cbb754d86ab71aee047ad345fd2c49")
        #expect(hexString(try Blake2s.mac(key: key, outputCount: 32, [UInt8(0)])) == "40d15fee7c328830166ac3f918650f807e7e01e177258cdc0a39b11f598066f1")
    }

    /// WireGuard's MAC is keyed BLAKE2s with a 16-byte output, which is not a truncated 32-byte one.
    /// Expected value computed with CPython's hashlib.blake2s(digest_size=16, key=...), an independent
    /// implementation (the BLAKE2 reference code).
    @Test func keyedBlake2s128MatchesAnIndependentImplementation() throws {
        let key = Array(UInt8(0)...UInt8(0x1f))
        let mac = try Blake2s.mac(key: key, outputCount: 16, Array("WireGuard".utf8))
        #expect(hexString(mac) == "c44bc1a201f2ff374d10eda15244ad8a")
    }

    /// Expected values from CPython's hmac module over hashlib.blake2s.
    @Test func hmacBlake2sAndKDFMatchAnIndependentImplementation() throws {
        let key = Array(UInt8(0)...UInt8(0x1f))
        #expect(hexString(try HMACBlake2s.authenticate(key: key, [Array("abc".utf8)])) == "82623be5bc0a391b24dce53e67d028eff92d586de0485ac37822e597d049c74f")
        let (first, second, third) = try KDF.kdf3(key: key, input: Array("input".utf8))
        #expect(hexString(first) == "87b7f70b24183c6db5dc4f6d9f4c47cdb203321aa2a0bef714896adb3107a040")
        #expect(hexString(second) == "538a02e1eb2e31b7e4d4b82476d1fe2acf50085d3fb584537279195f5d1f5824")
        #expect(hexString(third) == "9ad858025593be88de0f9442a589cfe84a88dc19e4753d93684d1c5efc4837f9")
        #expect(try KDF.kdf1(key: key, input: Array("input".utf8)).constantTimeEquals(first))
    }

    @Test func x25519IsRFC7748Section6_1() throws {
        let alice = try X25519.PrivateKey(rawRepresentation: hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519.PrivateKey(rawRepresentation: hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(hexString(alice.publicKey.bytes) == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(hexString(bob.publicKey.bytes) == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(hexString(try alice.sharedSecret(with: bob.publicKey)) == shared)
        #expect(hexString(try bob.sharedSecret(with: alice.publicKey)) == shared)
    }

    @Test func x25519RefusesALowOrderPeerKey() throws {
        let key = try X25519.PrivateKey.generate()
        #expect(throws: CryptoError.zeroSharedSecret) { try key.sharedSecret(with: PublicKey(bytes: [UInt8](repeating: 0, count: 32))) }
        #expect(throws: CryptoError.zeroSharedSecret) { try key.sharedSecret(with: PublicKey(bytes: [1] + [UInt8](repeating: 0, count: 31))) }
    }

    @Test func generatedKeysAreClampedAndAgree() throws {
        let first = try X25519.PrivateKey.generate()
        let second = try X25519.PrivateKey.generate()
        let raw = try first.rawRepresentation().withUnsafeBytes { Array($0) }
        #expect(raw[0] & 7 == 0 && raw[31] & 0x80 == 0 && raw[31] & 0x40 != 0)
        #expect(try first.sharedSecret(with: second.publicKey).constantTimeEquals(second.sharedSecret(with: first.publicKey)))
    }

    @Test func chaChaPolyIsRFC8439Section2_8_2() throws {
        let cipher = try ChaChaPoly(key: Array(UInt8(0x80)...UInt8(0x9f)))
        let nonce = ChaChaPoly.Nonce(prefix: 7, counter: 0x4746_4544_4342_4140)  // 07000000 4041424344454647
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        var buffer = Self.sunscreen + [UInt8](repeating: 0, count: 16)
        let sealed = try buffer.withUnsafeMutableBytes { try cipher.seal(inPlace: $0, plaintextCount: Self.sunscreen.count, nonce: nonce, aad: aad) }
        #expect(sealed == Self.sunscreen.count + 16)
        #expect(hexString(buffer) == """
            d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36\
            92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116\
            1ae10b594f09e26a7e902ecbd0600691
            """)
        let opened = try buffer.withUnsafeMutableBytes { try cipher.open(inPlace: $0, ciphertextCount: sealed, nonce: nonce, aad: aad) }
        #expect(Array(buffer[0..<opened]) == Self.sunscreen)
    }

    @Test func chaChaPolyRefusesAnyFlippedByteAndWipesTheBuffer() throws {
        let cipher = try ChaChaPoly(key: [UInt8](repeating: 7, count: 32))
        let message = Array("a transport packet".utf8)
        let sealed = try cipher.seal(message, counter: 42, aad: [UInt8]())
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 1
            #expect(throws: CryptoError.authenticationFailed) {
                try tampered.withUnsafeMutableBytes { try cipher.open(inPlace: $0, ciphertextCount: sealed.count, counter: 42) }
            }
            #expect(tampered[0..<message.count].allSatisfy { $0 == 0 })
        }
        #expect(throws: CryptoError.authenticationFailed) { try cipher.open(sealed, counter: 43, aad: [UInt8]()) }
        #expect(try cipher.open(sealed, counter: 42, aad: [UInt8]()).withUnsafeBytes { Array($0) } == message)
    }

    @Test func oneContextSealsManyPacketsOfEverySize() throws {
        let sender = try ChaChaPoly(key: [UInt8](repeating: 3, count: 32))
        let receiver = try ChaChaPoly(key: [UInt8](repeating: 3, count: 32))
        for (counter, size) in [0, 1, 15, 16, 17, 64, 1420, 0].enumerated() {
            let packet = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            var buffer = packet + [UInt8](repeating: 0, count: 16)
            let sealed = try buffer.withUnsafeMutableBytes { try sender.seal(inPlace: $0, plaintextCount: size, counter: UInt64(counter)) }
            let opened = try buffer.withUnsafeMutableBytes { try receiver.open(inPlace: $0, ciphertextCount: sealed, counter: UInt64(counter)) }
            #expect(Array(buffer[0..<opened]) == packet)
        }
    }

    @Test func hChaCha20IsTheXChaChaDraftSection2_2_1() throws {
        let subkey = hex("000000090000004a0000000031415927").withUnsafeBytes {
            HChaCha20.subkey(key: Array(UInt8(0)...UInt8(0x1f)), nonce: $0)
        }
        #expect(hexString(subkey) == "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
    }

    @Test func xChaChaPolyIsTheXChaChaDraftAppendixA_3_1() throws {
        let key = Array(UInt8(0x80)...UInt8(0x9f))
        let nonce = Array(UInt8(0x40)...UInt8(0x57))
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let sealed = try XChaChaPoly.seal(Self.sunscreen, key: key, nonce: nonce, aad: aad)
        #expect(hexString(sealed) == """
            bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452\
            2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13b52e\
            c0875924c1c7987947deafd8780acf49
            """)
        #expect(try XChaChaPoly.open(sealed, key: key, nonce: nonce, aad: aad).withUnsafeBytes { Array($0) } == Self.sunscreen)
        var tampered = sealed
        tampered[0] ^= 0x80
        #expect(throws: CryptoError.authenticationFailed) { try XChaChaPoly.open(tampered, key: key, nonce: nonce, aad: aad) }
    }

    @Test func tai64nIsBigEndianLabelThenNanoseconds() {
        let stamp = TAI64N(seconds: 0x4000_0000_0000_000a, nanoseconds: 0x0102_0304)
        #expect(hexString(stamp.bytes) == "400000000000000a01020304")
        #expect(TAI64N(bytes: stamp.bytes) == stamp)
        #expect(TAI64N(bytes: [UInt8](repeating: 0, count: 11)) == nil)
        // Unix time 1 s + 2^24 + 5 ns: the label adds 2^62 + 10, the low 24 bits of nanoseconds are cleared.
        #expect(hexString(TAI64N(unixSeconds: 1, nanoseconds: 0x0100_0005).bytes) == "400000000000000b01000000")
        #expect(TAI64N(seconds: 5, nanoseconds: 9) < TAI64N(seconds: 6, nanoseconds: 0))
        #expect(TAI64N(seconds: 5, nanoseconds: 9) > TAI64N(seconds: 5, nanoseconds: 8))
        #expect(TAI64N.now() > TAI64N(unixSeconds: 1_700_000_000, nanoseconds: 0))
    }

    @Test func base64KeysRoundTripInTheCanonicalFormOnly() throws {
        let key = try PublicKey(bytes: hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"))
        #expect(key.base64 == "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=")
        #expect(try PublicKey(base64: key.base64) == key)
        for bad in ["", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp=",
                    " SDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=", "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm==",
                    "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=="] {
            #expect(throws: CryptoError.invalidBase64Key) { try PublicKey(base64: bad) }
        }
        let alice = try X25519.PrivateKey(base64: "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=")
        #expect(alice.publicKey == key)
    }
}
