/// tund's version, the one place it is written: `tund --version`, `tundctl --version` and the
/// `tund_build_info` metric all read it.
public enum TundVersion {
    public static let current = "0.2.0"
}
