/// Anything whose bytes can be read in place: the inputs of hashes, MACs and KDFs are a mix of public
/// arrays and `SecretBytes`, and this lets one call take both without copying secrets into arrays.
public protocol ByteInput {
    /// Reads the bytes; the pointer must not escape `body`.
    func withByteInput<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R
}

extension Array: ByteInput where Element == UInt8 {
    public func withByteInput<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { withUnsafeBytes(body) }
}

extension ArraySlice: ByteInput where Element == UInt8 {
    public func withByteInput<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { withUnsafeBytes(body) }
}

extension UnsafeRawBufferPointer: ByteInput {
    public func withByteInput<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { body(self) }
}

extension SecretBytes: ByteInput {
    public func withByteInput<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { withUnsafeBytes(body) }
}
