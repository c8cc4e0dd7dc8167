/// `responder`: answers ICMP/ICMPv6 echo requests, ARP requests and neighbour solicitations in place
/// (see `Responder`); everything else is counted as ignored.
final class ResponderMode: PacketMode {
    let kind: DeviceKind

    init(kind: DeviceKind) { self.kind = kind }

    func handle(_ batch: ReadBatch, _ device: any PacketDevice, _ tally: inout BatchTally) -> ModeVerdict {
        for index in 0..<batch.count {
            let packet = batch.packet(index)
            guard let answer = Responder.answer(packet, length: packet.count, kind: kind) else {
                tally[.droppedIgnored] &+= 1
                continue
            }
            let frame = batch.frame(index)
            // The answer asks nothing of the kernel: an all-zero virtio header.
            if batch.prefix > 0 { frame.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: batch.prefix) }
            device.writeCounted(UnsafeRawBufferPointer(rebasing: frame[0..<(batch.prefix + answer)]), prefix: batch.prefix, &tally)
        }
        return .carryOn
    }
}
