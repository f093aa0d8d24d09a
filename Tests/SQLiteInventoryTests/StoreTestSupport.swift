import ApplianceTesting
import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

/// Opens a fresh store in its own temporary directory, seeded with `Fixtures.bootEnvs` unless `seeded` is false,
/// runs `body`, and removes the directory afterwards.
func withStore<T>(
    seeded: Bool = true, _ body: (SQLiteInventory, TemporaryDirectory) async throws -> T
) async throws -> T {
    let directory = try TemporaryDirectory(prefix: "anvil-sqlite-test")
    defer { directory.remove() }
    // The store lives only inside this call, so it is closed before the directory is removed.
    func run() async throws -> T {
        let store = try SQLiteInventory(path: directory.file("inventory.sqlite"))
        if seeded {
            for bootEnv in Fixtures.bootEnvs { _ = try await store.create(bootEnv, actor: "test") }
        }
        defer { store.close() }
        return try await body(store, directory)
    }
    return try await run()
}

extension InventoryError {
    /// The field of an `.alreadyExists`, nil for any other error.
    var alreadyExistsField: String? {
        if case .alreadyExists(let field, _) = self { field } else { nil }
    }

    /// The fields of an `.invalid`, nil for any other error.
    var invalidFields: [String]? {
        if case .invalid(let problems) = self { problems.map(\.field) } else { nil }
    }

    var isRevisionMismatch: Bool {
        if case .revisionMismatch = self { true } else { false }
    }

    var isReadOnlyContent: Bool {
        if case .readOnlyContent = self { true } else { false }
    }

    var isNotFound: Bool {
        if case .notFound = self { true } else { false }
    }
}

/// Runs `body`, expecting it to throw an `InventoryError`, and returns that error (nil, with a recorded issue, otherwise).
func inventoryError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> InventoryError? {
    do {
        try await body()
        Issue.record("expected an InventoryError, but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as InventoryError {
        return error
    } catch {
        Issue.record("expected an InventoryError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}
