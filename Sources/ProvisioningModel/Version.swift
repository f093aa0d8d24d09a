public enum AnvilVersion {
    public static let current = "0.1.0"
}
