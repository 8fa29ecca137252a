/// Wyrcan's version, shown by `--version` of both executables.
public enum WyrcanVersion {
    public static let string = "0.1.0"
}
