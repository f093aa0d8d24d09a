import Foundation

/// The discovery image that `deploy/build-discovery-image.sh` builds into the source tree's
/// `.build-discovery/boot-files`, where `anvil serve` finds it by default (`bootFiles.imageDirectory`).
public enum DiscoveryImage {
    public static var directory: String { AnvilServer.repositoryRoot + "/.build-discovery/boot-files/discovery/amd64" }

    /// Runs the build script (a no-op when its stamp says the image is current; minutes when not).
    public static func build() async throws {
        let result = try await AnvilServer.run(
            "/bin/bash", [AnvilServer.repositoryRoot + "/deploy/build-discovery-image.sh"], timeout: .seconds(900))
        guard result.status == 0 else {
            throw AnvilServerError("build-discovery-image.sh failed (\(result.status)):\n\(result.stdout)\n\(result.stderr)")
        }
    }
}
