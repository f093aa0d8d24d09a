import ApplianceTesting
import Foundation
import HTTPTypes
import ProvisioningModel
import SQLiteInventory
import Testing

/// One writable kind: a minimal valid body, and the optional string field the test changes.
struct WritableKind: Sendable, CustomTestStringConvertible {
    var collection: String
    var body: JSONValue
    /// A string field PUT and PATCH change; PATCH with `null` takes it back to `cleared`.
    var field: String
    /// What the field reads after `{"<field>": null}`: its default, or absent (`nil`).
    var cleared: JSONValue?

    var testDescription: String { collection }

    static let all: [WritableKind] = [
        WritableKind(collection: "machines", body: ["name": "m1"], field: "description", cleared: ""),
        WritableKind(
            collection: "subnets",
            body: ["name": "net2", "network": "10.1.0.0/24", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.20"],
            field: "description", cleared: ""),
        WritableKind(
            collection: "reservations", body: ["mac": "52:54:00:AA:BB:CC", "address": "10.99.0.50", "subnet": "lab"],
            field: "hostname", cleared: nil),
        WritableKind(collection: "bootenvs", body: ["name": "be1"], field: "description", cleared: ""),
        WritableKind(
            collection: "params", body: ["name": "p1", "schema": ["type": "integer"], "default": 3], field: "description", cleared: ""),
        WritableKind(collection: "profiles", body: ["name": "pr1", "params": ["ntp-server": "10.0.0.1"]], field: "description", cleared: ""),
        WritableKind(
            collection: "tasks", body: ["name": "t1", "templates": [["name": "run", "template": "run.sh.tmpl"]]], field: "description",
            cleared: ""),
        WritableKind(collection: "stages", body: ["name": "s1"], field: "description", cleared: ""),
        WritableKind(collection: "workflows", body: ["name": "w1", "stages": ["install"]], field: "description", cleared: ""),
    ]
}

@Suite("Object CRUD")
struct ObjectCRUDTests {
    @Test("create, get, replace, patch and delete", arguments: WritableKind.all)
    func roundTrip(kind: WritableKind) async throws {
        try await APITestHarness.withAPI { api in
            let collection = "/api/v1/\(kind.collection)"

            // Create: 201 with Location and ETag "1".
            let created = try await api.post(collection, kind.body)
            #expect(created.status == .created, "\(created)")
            #expect(created.etag == "\"1\"")
            let location = try #require(created.headers[.location])
            let key = try #require(location.hasPrefix(collection + "/") ? String(location.dropFirst(collection.count + 1)) : nil)
            #expect(!key.isEmpty)
            #expect(created.json?["meta"]?["revision"] == 1)
            #expect(created.json?["meta"]?["origin"] == "user")

            // Get: the same document, meta.revision 1.
            let fetched = try await api.get(location)
            #expect(fetched.status == .ok, "\(fetched)")
            #expect(fetched.etag == "\"1\"")
            #expect(fetched.json?["meta"]?["revision"] == 1)
            #expect(fetched.json?.removing("meta") == created.json?.removing("meta"))
            for (name, value) in kind.body.objectValue ?? [:] where name != "mac" {
                #expect(fetched.json?[name] == value, "field \(name)")
            }
            let listed = try await api.get(collection)
            #expect(listed.status == .ok)
            #expect(listed.items.contains { $0.removing("meta") == fetched.json?.removing("meta") })

            // Replace with the current ETag: 200 and ETag "2".
            var replacement = try #require(fetched.json?.removing("meta").objectValue)
            replacement[kind.field] = "replaced"
            let replaced = try await api.put(location, .object(replacement), ifMatch: "\"1\"")
            #expect(replaced.status == .ok, "\(replaced)")
            #expect(replaced.etag == "\"2\"")
            #expect(replaced.json?[kind.field] == "replaced")
            #expect(replaced.json?["meta"]?["revision"] == 2)

            // Replace with the old ETag: 412.
            replacement[kind.field] = "lost update"
            let stale = try await api.put(location, .object(replacement), ifMatch: "\"1\"")
            stale.expectError(.preconditionFailed, "revision_mismatch", field: "If-Match")

            // Merge patch: one field changes, every other field stays.
            let patched = try await api.patch(location, [kind.field: "patched"], ifMatch: "\"2\"")
            #expect(patched.status == .ok, "\(patched)")
            #expect(patched.etag == "\"3\"")
            #expect(patched.json?[kind.field] == "patched")
            #expect(patched.json?.removing("meta", kind.field) == replaced.json?.removing("meta", kind.field))

            // Merge patch with null: the field goes back to its default (or away).
            let cleared = try await api.patch(location, [kind.field: nil])
            #expect(cleared.status == .ok, "\(cleared)")
            #expect(cleared.json?[kind.field] == kind.cleared)
            #expect(cleared.json?.removing("meta", kind.field) == replaced.json?.removing("meta", kind.field))
            #expect(cleared.etag == "\"4\"")
            #expect(try await api.get(location).json?[kind.field] == kind.cleared)

            // Delete with a stale ETag: 412, and the object is still there.
            try await api.delete(location, ifMatch: "\"3\"").expectError(.preconditionFailed, "revision_mismatch")
            #expect(try await api.get(location).status == .ok)

            // Delete: 204, then 404.
            let deleted = try await api.delete(location, ifMatch: "\"4\"")
            #expect(deleted.status == .noContent, "\(deleted)")
            #expect(deleted.text.isEmpty)
            try await api.get(location).expectError(.notFound, "not_found")
            #expect(try await api.get(collection).items.allSatisfy { $0.removing("meta") != fetched.json?.removing("meta") })
            try await api.delete(location).expectError(.notFound, "not_found")
        }
    }

    @Test("PUT and DELETE without If-Match write unconditionally; If-Match * and weak ETags are accepted")
    func ifMatchVariants() async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("bootenvs", ["name": "be1"])
            #expect(try await api.put("/api/v1/bootenvs/be1", ["description": "a"]).etag == "\"2\"")
            #expect(try await api.put("/api/v1/bootenvs/be1", ["description": "b"], ifMatch: "*").etag == "\"3\"")
            #expect(try await api.put("/api/v1/bootenvs/be1", ["description": "c"], ifMatch: "W/\"3\"").etag == "\"4\"")
            #expect(try await api.patch("/api/v1/bootenvs/be1", ["description": "d"], ifMatch: "\"4\"").etag == "\"5\"")
            try await api.patch("/api/v1/bootenvs/be1", ["description": "e"], ifMatch: "\"4\"")
                .expectError(.preconditionFailed, "revision_mismatch")
            #expect(try await api.delete("/api/v1/bootenvs/be1").status == .noContent)
        }
    }

    @Test("PUT names the object by its URL; a body naming another object is refused")
    func replaceKeyComesFromURL() async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("profiles", ["name": "pr1", "description": "first"])
            let replaced = try await api.put("/api/v1/profiles/pr1", ["description": "no name in the body"])
            #expect(replaced.status == .ok, "\(replaced)")
            #expect(replaced.json?["name"] == "pr1")
            try await api.put("/api/v1/profiles/pr1", ["name": "pr2"]).expectError(.unprocessableContent, "invalid", field: "name")
            try await api.patch("/api/v1/profiles/pr1", ["name": "pr2"]).expectError(.unprocessableContent, "invalid", field: "name")
            try await api.patch("/api/v1/machines/\(World.machineID)", ["id": .string(World.unknownID)])
                .expectError(.unprocessableContent, "invalid", field: "id")
            try await api.put("/api/v1/profiles/nope", ["description": "x"]).expectError(.notFound, "not_found")
            try await api.patch("/api/v1/profiles/nope", ["description": "x"]).expectError(.notFound, "not_found")
        }
    }

    @Test("a merge patch merges nested objects and ignores meta")
    func mergePatchNested() async throws {
        try await APITestHarness.withAPI { api in
            try await api.create("profiles", ["name": "pr1", "params": ["a": 1, "b": 2]])
            let patched = try await api.patch("/api/v1/profiles/pr1", ["params": ["a": nil, "c": 3], "meta": ["revision": 99]])
            #expect(patched.status == .ok, "\(patched)")
            #expect(patched.json?["params"] == ["b": 2, "c": 3])
            #expect(patched.json?["meta"]?["revision"] == 2)
        }
    }
}
