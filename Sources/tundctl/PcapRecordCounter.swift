/// Counts the packet records of a pcap file as its bytes stream past, to report what was captured.
///
/// A pcap file is a 24-byte header, whose magic number gives the byte order, then records of a 16-byte
/// header (`incl_len` at offset 8) followed by `incl_len` bytes of packet.
struct PcapRecordCounter {
    private(set) var records = 0
    private(set) var bytes = 0
    /// False once the first four bytes are not a pcap magic number.
    private(set) var looksLikePcap = true

    private var header: [UInt8] = []
    private var pendingRecordHeader: [UInt8] = []
    private var skipRemaining = 0
    private var bigEndian = false

    mutating func feed(_ piece: [UInt8]) {
        bytes += piece.count
        var index = piece.startIndex
        while index < piece.endIndex {
            if header.count < 24 {
                let take = min(24 - header.count, piece.endIndex - index)
                header += piece[index..<index + take]
                index += take
                if header.count >= 4 && header.count - take < 4 { checkMagic() }
                continue
            }
            if skipRemaining > 0 {
                let take = min(skipRemaining, piece.endIndex - index)
                skipRemaining -= take
                index += take
                continue
            }
            let take = min(16 - pendingRecordHeader.count, piece.endIndex - index)
            pendingRecordHeader += piece[index..<index + take]
            index += take
            if pendingRecordHeader.count == 16 {
                let length = pendingRecordHeader[8..<12].reduce(0) { $0 << 8 | Int($1) }
                skipRemaining = bigEndian ? length : Int(UInt32(length).byteSwapped)
                records += 1
                pendingRecordHeader = []
            }
        }
    }

    private mutating func checkMagic() {
        let magic = header[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        switch magic {
        case 0xa1b2c3d4, 0xa1b23c4d: bigEndian = true
        case 0xd4c3b2a1, 0x4d3cb2a1: bigEndian = false
        default: looksLikePcap = false
        }
    }
}
