/// `count`: read, classify and count; the packets go no further.
final class CountMode: PacketMode {
    func handle(_ batch: ReadBatch, _ device: any PacketDevice, _ tally: inout BatchTally) -> ModeVerdict { .carryOn }
}
