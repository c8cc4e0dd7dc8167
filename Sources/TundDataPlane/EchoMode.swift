/// `echo`: every packet goes back into the device as it came (a super-packet with its virtio header stays one).
final class EchoMode: PacketMode {
    func handle(_ batch: ReadBatch, _ device: any PacketDevice, _ tally: inout BatchTally) -> ModeVerdict {
        for index in 0..<batch.count { device.writeCounted(UnsafeRawBufferPointer(batch.frame(index)), prefix: batch.prefix, &tally) }
        return .carryOn
    }
}
