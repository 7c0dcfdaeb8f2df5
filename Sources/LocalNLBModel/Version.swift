/// The release this build is: `localnlb version`, and the first line `serve` logs.
public enum LocalNLBVersion {
    public static let current = "0.10.0"
}
