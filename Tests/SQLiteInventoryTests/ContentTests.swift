import ApplianceTesting
import Foundation
import ProvisioningModel
import SQLiteInventory
import Testing

private func content(_ object: any InventoryObject, _ source: String = "content/shipped.yaml") -> ContentObject {
    ContentObject(object: object, source: source)
}

private let shipped: [ContentObject] = [
    content(Param(name: "console", schema: ParamSchema(type: .string), default: "ttyS0"), "content/params.yaml"),
    content(BootEnv(name: "debian-12", description: "Debian 12"), "bootenvs/debian-12.yaml"),
    content(Profile(name: "serial", params: ["console": "ttyS1"]), "content/profiles.yaml"),
]

@Suite("Shipped content")
struct ContentTests {
    @Test("loading creates content objects with origin content and their source")
    func createsContent() async throws {
        try await withStore { store, _ in
            let report = try await store.loadContent(shipped)
            #expect(report.created.count == 3)
            #expect(report.updated.isEmpty && report.removed.isEmpty && report.skipped.isEmpty)
            let bootEnv = try await store.fetch(BootEnv.self, key: "debian-12")
            #expect(bootEnv.meta.origin == .content)
            #expect(bootEnv.meta.source == "bootenvs/debian-12.yaml")
            #expect(try await store.fetch(Profile.self, key: "serial").meta.origin == .content)
        }
    }

    @Test("a second identical load reports everything unchanged and writes nothing")
    func identicalReloadUnchanged() async throws {
        try await withStore { store, _ in
            _ = try await store.loadContent(shipped)
            let cursor = try await store.latestEventCursor()
            let report = try await store.loadContent(shipped)
            #expect(report.unchanged == 3)
            #expect(report.created.isEmpty && report.updated.isEmpty && report.removed.isEmpty && report.skipped.isEmpty)
            #expect(try await store.latestEventCursor() == cursor)
            #expect(try await store.fetch(BootEnv.self, key: "debian-12").meta.revision == 1)
        }
    }

    @Test("a changed body updates the content object")
    func changedBodyUpdates() async throws {
        try await withStore { store, _ in
            _ = try await store.loadContent(shipped)
            var changed = shipped
            changed[1] = content(BootEnv(name: "debian-12", description: "Debian 12 (bookworm)"), "bootenvs/debian-12.yaml")
            let report = try await store.loadContent(changed)
            #expect(report.updated == [changed[1].label])
            #expect(report.unchanged == 2)
            let stored = try await store.fetch(BootEnv.self, key: "debian-12")
            #expect(stored.object.description == "Debian 12 (bookworm)")
            #expect(stored.meta.revision == 2)
            #expect(stored.meta.origin == .content)
        }
    }

    @Test("content no longer shipped is removed")
    func removesUnshipped() async throws {
        try await withStore { store, _ in
            _ = try await store.loadContent(shipped)
            let report = try await store.loadContent(Array(shipped.prefix(2)))
            #expect(report.removed == ["profile 'serial'"])
            #expect(await inventoryError { _ = try await store.fetch(Profile.self, key: "serial") }?.isNotFound == true)
            #expect(try await store.count(.bootenv) == 3)
        }
    }

    @Test("content no longer shipped but still referenced is kept and reported in skipped")
    func keepsReferencedContent() async throws {
        try await withStore { store, _ in
            _ = try await store.loadContent(shipped)
            _ = try await store.create(Fixtures.machine(bootEnv: "debian-12"), actor: "test")
            let report = try await store.loadContent(shipped.filter { !($0.object is BootEnv) })
            #expect(report.removed.isEmpty)
            #expect(report.skipped.map(\.object) == ["bootenv 'debian-12' (no longer shipped)"])
            #expect(try await store.fetch(BootEnv.self, key: "debian-12").meta.origin == .content)
        }
    }

    @Test("a shipped object whose name a user object has is skipped and the user object kept")
    func userObjectWins() async throws {
        try await withStore { store, _ in
            _ = try await store.create(Profile(name: "serial", description: "mine"), actor: "alice")
            let report = try await store.loadContent(shipped)
            #expect(report.created.count == 2)
            #expect(report.skipped.map(\.object) == [shipped[2].label])
            let profile = try await store.fetch(Profile.self, key: "serial")
            #expect(profile.meta.origin == .user)
            #expect(profile.object.description == "mine")
        }
    }

    @Test("a shipped object with a dangling reference is skipped; the rest loads")
    func danglingReferenceSkipped() async throws {
        try await withStore { store, _ in
            let stage = content(Stage(name: "install", tasks: ["no-such-task"]), "content/stages.yaml")
            let report = try await store.loadContent(shipped + [stage])
            #expect(report.created.count == 3)
            #expect(report.skipped.map(\.object) == [stage.label])
            #expect(try await store.count(.stage) == 0)
        }
    }

    @Test("replace and delete of a content object throw readOnlyContent")
    func contentIsReadOnly() async throws {
        try await withStore { store, _ in
            _ = try await store.loadContent(shipped)
            let replaceError = await inventoryError {
                _ = try await store.replace(BootEnv(name: "debian-12", description: "hacked"), expectedRevision: nil, actor: "alice")
            }
            #expect(replaceError == .readOnlyContent(what: "bootenv", key: "debian-12", source: "bootenvs/debian-12.yaml"))
            let deleteError = await inventoryError {
                try await store.delete(BootEnv.self, key: "debian-12", expectedRevision: nil, actor: "alice")
            }
            #expect(deleteError?.isReadOnlyContent == true)
            #expect(try await store.fetch(BootEnv.self, key: "debian-12").object.description == "Debian 12")
        }
    }

    @Test("creating a user object with a content object's name throws readOnlyContent")
    func cannotShadowContent() async throws {
        try await withStore { store, _ in
            _ = try await store.loadContent(shipped)
            let error = await inventoryError { _ = try await store.create(Profile(name: "serial"), actor: "alice") }
            #expect(error?.isReadOnlyContent == true)
        }
    }

    @Test("content is written with actor 'content'")
    func contentActor() async throws {
        try await withStore(seeded: false) { store, _ in
            _ = try await store.loadContent(shipped)
            let events = try await store.events(after: 0, limit: 10)
            #expect(events.count == 3)
            #expect(events.allSatisfy { $0.actor == "content" && $0.action == .created })
        }
    }
}
