import HTTPTypes
import ProvisioningModel
import Testing

@testable import HTTPAPI

/// The pure part of `/files/`: which status, headers and bytes a GET or HEAD gets. The channel handler
/// that sends them is tested with curl against `anvil serve` (ApplianceTests, "Boot files over HTTP").
@Suite("Boot-file response plan")
struct BootFileResponsePlanTests {
    static let path = try! BootFilePath(validating: "debian-12/linux")
    // 2026-12-03 10:20:30 UTC
    static let file = BootFileMetadata(size: 1000, modificationSeconds: 1_796_293_230, modificationNanoseconds: 5)

    static func plan(_ conditions: BootFileRequestConditions = .init(), file: BootFileMetadata = file) -> BootFileResponsePlan {
        BootFileResponsePlan(path: path, file: file, conditions: conditions)
    }

    @Test("a plain GET is the whole file with validators; HEAD is the same headers and no bytes")
    func whole() {
        let get = Self.plan()
        #expect(get.status == .ok && get.body == 0..<1000)
        #expect(get.headers[.contentLength] == "1000")
        #expect(get.headers[.acceptRanges] == "bytes")
        #expect(get.headers[.contentType] == "application/octet-stream")
        #expect(get.headers[.eTag] == Self.file.entityTag)
        #expect(get.headers[.lastModified] == "Thu, 03 Dec 2026 10:20:30 GMT")
        let head = Self.plan(.init(isHead: true))
        #expect(head.status == .ok && head.body == nil && head.headers == get.headers)
    }

    @Test(
        "single ranges: a-b, a-, -n, clamped to the end; several ranges, other units and nonsense get the whole file",
        arguments: [
            ("bytes=0-99", 0..<100), ("bytes=990-", 990..<1000), ("bytes=-10", 990..<1000), ("bytes=-5000", 0..<1000),
            ("bytes=900-5000", 900..<1000), ("bytes=999-999", 999..<1000), (" bytes=5-9 ", 5..<10),
        ])
    func ranges(header: String, bytes: Range<Int>) {
        let plan = Self.plan(.init(range: header))
        #expect(plan.status == .partialContent && plan.body == bytes)
        #expect(plan.headers[.contentLength] == String(bytes.count))
        #expect(plan.headers[.contentRange] == "bytes \(bytes.lowerBound)-\(bytes.upperBound - 1)/1000")
    }

    @Test(
        "ranges that mean the whole file",
        arguments: ["bytes=0-9,20-29", "items=0-9", "bytes=9-0", "bytes=x-", "bytes=", "bytes=-", "bytes=+1-2"])
    func wholeFileRanges(header: String) {
        let plan = Self.plan(.init(range: header))
        #expect(plan.status == .ok && plan.body == 0..<1000 && plan.headers[.contentRange] == nil)
    }

    @Test(
        "a range starting at or past the end, or an empty suffix, is 416 with the size",
        arguments: ["bytes=1000-", "bytes=5000-6000", "bytes=-0", "bytes=99999999999999999999999-"])
    func unsatisfiable(header: String) {
        let plan = Self.plan(.init(range: header))
        #expect(plan.status == .rangeNotSatisfiable && plan.body == nil)
        #expect(plan.headers[.contentRange] == "bytes */1000")
    }

    @Test("an empty file has no satisfiable range and a whole of nothing")
    func emptyFile() {
        let empty = BootFileMetadata(size: 0, modificationSeconds: 0, modificationNanoseconds: 0)
        #expect(Self.plan(.init(range: "bytes=0-"), file: empty).status == .rangeNotSatisfiable)
        #expect(Self.plan(.init(range: "bytes=-1"), file: empty).status == .rangeNotSatisfiable)
        let whole = Self.plan(file: empty)
        #expect(whole.status == .ok && whole.body == 0..<0 && whole.headers[.contentLength] == "0")
    }

    @Test("HEAD ignores Range (it is defined for GET only)")
    func headIgnoresRange() {
        let plan = Self.plan(.init(isHead: true, range: "bytes=0-9"))
        #expect(plan.status == .ok && plan.body == nil && plan.headers[.contentLength] == "1000")
    }

    @Test("If-None-Match: the tag, a weak form of it, a list holding it, or * is 304; another tag is 200")
    func ifNoneMatch() {
        let tag = Self.file.entityTag
        for values in [[tag], ["W/\(tag)"], ["\"other\", \(tag)"], ["\"other\"", tag], ["*"]] {
            let plan = Self.plan(.init(ifNoneMatch: values))
            #expect(plan.status == .notModified && plan.body == nil, "\(values)")
            #expect(plan.headers[.eTag] == tag && plan.headers[.contentLength] == nil)
        }
        #expect(Self.plan(.init(ifNoneMatch: ["\"other\""])).status == .ok)
        // If-None-Match decides alone: a matching date beside a stale tag still sends the file.
        #expect(Self.plan(.init(ifNoneMatch: ["\"other\""], ifModifiedSince: Self.file.lastModified)).status == .ok)
    }

    @Test("If-Modified-Since: at or after the modification second is 304; before it, or unparsable, is 200")
    func ifModifiedSince() {
        #expect(Self.plan(.init(ifModifiedSince: "Thu, 03 Dec 2026 10:20:30 GMT")).status == .notModified)
        #expect(Self.plan(.init(ifModifiedSince: "Fri, 04 Dec 2026 00:00:00 GMT")).status == .notModified)
        #expect(Self.plan(.init(ifModifiedSince: "Thu, 03 Dec 2026 10:20:29 GMT")).status == .ok)
        #expect(Self.plan(.init(ifModifiedSince: "yesterday")).status == .ok)
    }

    @Test("If-Range: the strong tag or the exact date keeps the range; anything else sends the whole file")
    func ifRange() {
        let tag = Self.file.entityTag
        #expect(Self.plan(.init(range: "bytes=0-9", ifRange: tag)).status == .partialContent)
        #expect(Self.plan(.init(range: "bytes=0-9", ifRange: Self.file.lastModified)).status == .partialContent)
        for stale in ["\"other\"", "W/\(tag)", "Thu, 03 Dec 2026 10:20:29 GMT"] {
            let plan = Self.plan(.init(range: "bytes=0-9", ifRange: stale))
            #expect(plan.status == .ok && plan.body == 0..<1000, "\(stale)")
        }
    }

    @Test("the entity tag changes with the size and the modification time, to the nanosecond")
    func entityTag() {
        var other = Self.file
        other.modificationNanoseconds += 1
        #expect(other.entityTag != Self.file.entityTag)
        other = Self.file
        other.size += 1
        #expect(other.entityTag != Self.file.entityTag)
        #expect(Self.file.entityTag.hasPrefix("\"") && Self.file.entityTag.hasSuffix("\""))
    }

    @Test("content types: bytes by default, text for scripts and configs")
    func contentTypes() throws {
        for (name, type) in [
            ("linux", "application/octet-stream"), ("ipxe.efi", "application/octet-stream"),
            ("undionly.kpxe", "application/octet-stream"),
            ("boot.ipxe", "text/plain; charset=utf-8"), ("grub.cfg", "text/plain; charset=utf-8"),
            ("initrd.gz", "application/octet-stream"),
            ("notes.json", "application/json"), (".hidden", "application/octet-stream"),
        ] {
            #expect(BootFileResponsePlan.contentType(for: try BootFilePath(validating: "d/\(name)")) == type, "\(name)")
        }
    }

    @Test("HTTP dates: formatted and parsed as IMF-fixdate, round trip")
    func httpDates() {
        #expect(HTTPDate.format(epochSeconds: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(epochSeconds: 784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.format(epochSeconds: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == 784_111_777)
        for seconds in [0, 86_399, 86_400, 951_782_400, 1_796_293_230, 4_102_444_800] {
            #expect(HTTPDate.parse(HTTPDate.format(epochSeconds: seconds)) == seconds)
        }
        for bad in [
            "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT", "",
        ] {
            #expect(HTTPDate.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("request targets: /files/ paths are checked like TFTP's; the query is not part of the path; others are not ours")
    func targets() throws {
        #expect(BootFileTarget(requestTarget: "/files/debian-12/linux") == .file(try BootFilePath(validating: "debian-12/linux")))
        #expect(
            BootFileTarget(requestTarget: "/files/debian-12/linux?x=1#y")
                == .file(try BootFilePath(validating: "debian-12/linux")))
        #expect(BootFileTarget(requestTarget: "/files/a%20b") == .file(try BootFilePath(validating: "a b")))
        for other in ["/boot/52:54:00:00:00:01.ipxe", "/files", "/healthz", "/filesystem/x"] {
            #expect(BootFileTarget(requestTarget: other) == nil, "\(other)")
        }
        for escape in ["/files/../etc/passwd", "/files/%2e%2e/x", "/files/%2fetc/passwd", "/files/a/%2E%2E/%2e%2e/x"] {
            guard case .refused(.forbidden, "access_violation", _) = BootFileTarget(requestTarget: escape) else {
                Issue.record("\(escape): \(String(describing: BootFileTarget(requestTarget: escape)))")
                continue
            }
        }
        #expect(
            BootFileTarget(requestTarget: "/files/") == .refused(status: .notFound, code: "not_found", message: "no boot file "))
    }

    @Test("refusals use the API's JSON error shape")
    func errorShape() {
        let error = BootFileResponsePlan.error(status: .notFound, code: "not_found", message: "no boot file x/y")
        #expect(
            String(decoding: error.body, as: UTF8.self)
                == "{\"error\":{\"code\":\"not_found\",\"message\":\"no boot file x/y\"}}\n")
        #expect(error.headers[.contentType] == "application/json" && error.headers[.contentLength] == String(error.body.count))
    }
}
