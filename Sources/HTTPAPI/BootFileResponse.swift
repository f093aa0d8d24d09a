import Foundation
import HTTPTypes
import Hummingbird
import ProvisioningModel

/// The request target of a boot-file download: `/files/<path>` with the path checked by the same
/// rules as TFTP (``BootFilePath``). `nil` for every other target, which the router answers.
enum BootFileTarget: Equatable {
    case file(BootFilePath)
    /// A `/files/` target that can never name a boot file: answered with this error.
    case refused(status: HTTPResponse.Status, code: String, message: String)

    static let prefix = "/files/"

    init?(requestTarget: String) {
        // The query and fragment never name a file.
        let end = requestTarget.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? requestTarget.endIndex
        let path = requestTarget[..<end]
        guard path.hasPrefix(Self.prefix) else { return nil }
        let requested = String(path.dropFirst(Self.prefix.count))
        do {
            self = .file(try BootFilePath(validating: requested.removingPercentEncoding ?? requested))
        } catch {
            switch error {
            case .accessViolation(_, let reason):
                self = .refused(status: .forbidden, code: "access_violation", message: "\(requested): \(reason)")
            default:
                self = .refused(status: .notFound, code: "not_found", message: "no boot file \(requested)")
            }
        }
    }
}

/// What is known about an opened boot file that decides the response.
struct BootFileMetadata: Sendable, Equatable {
    var size: Int
    var modificationSeconds: Int
    var modificationNanoseconds: Int

    /// Changes whenever the file is replaced or rewritten (size or modification time, to the nanosecond).
    var entityTag: String {
        "\"\(String(modificationSeconds, radix: 16)).\(String(modificationNanoseconds, radix: 16))-\(String(size, radix: 16))\""
    }
    var lastModified: String { HTTPDate.format(epochSeconds: modificationSeconds) }
}

/// The headers of a boot-file request that change the answer.
struct BootFileRequestConditions: Equatable {
    var isHead = false
    var ifNoneMatch: [String] = []
    var ifModifiedSince: String?
    var range: String?
    var ifRange: String?
}

/// The answer to a GET or HEAD of a boot file: status, headers, and which bytes of the file follow.
/// Pure (no I/O): the channel handler opens the file, asks this, and sends what it says.
struct BootFileResponsePlan: Equatable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    /// The file bytes to send; `nil` for none (HEAD, 304, 416).
    var body: Range<Int>?

    init(status: HTTPResponse.Status, headers: HTTPFields, body: Range<Int>?) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(path: BootFilePath, file: BootFileMetadata, conditions: BootFileRequestConditions) {
        let entityTag = file.entityTag
        let lastModified = file.lastModified
        var validators = HTTPFields()
        validators[.eTag] = entityTag
        validators[.lastModified] = lastModified

        // RFC 9110 13.2.2: If-None-Match when present, otherwise If-Modified-Since.
        if !conditions.ifNoneMatch.isEmpty {
            if Self.anyWeaklyMatches(conditions.ifNoneMatch, entityTag) {
                self.init(status: .notModified, headers: validators, body: nil)
                return
            }
        } else if let since = conditions.ifModifiedSince.flatMap(HTTPDate.parse), file.modificationSeconds <= since {
            self.init(status: .notModified, headers: validators, body: nil)
            return
        }

        var headers = validators
        headers[.acceptRanges] = "bytes"
        headers[.contentType] = Self.contentType(for: path)
        // Range is only defined for GET (RFC 9110 14.2); If-Range sends the whole file when it does not match.
        var selection = ByteRangeSelection.whole
        if !conditions.isHead, let range = conditions.range,
            conditions.ifRange.map({ Self.ifRangeMatches($0, entityTag: entityTag, lastModified: lastModified) }) ?? true
        {
            selection = ByteRangeSelection(header: range, size: file.size)
        }
        switch selection {
        case .whole:
            headers[.contentLength] = String(file.size)
            self.init(status: .ok, headers: headers, body: conditions.isHead ? nil : 0..<file.size)
        case .partial(let bytes):
            headers[.contentLength] = String(bytes.count)
            headers[.contentRange] = "bytes \(bytes.lowerBound)-\(bytes.upperBound - 1)/\(file.size)"
            self.init(status: .partialContent, headers: headers, body: bytes)
        case .unsatisfiable:
            var refusal = validators
            refusal[.contentRange] = "bytes */\(file.size)"
            refusal[.contentLength] = "0"
            self.init(status: .rangeNotSatisfiable, headers: refusal, body: nil)
        }
    }

    /// The API's JSON error shape (see ``APIError``), for refusals that never reach the router.
    static func error(status: HTTPResponse.Status, code: String, message: String) -> (headers: HTTPFields, body: [UInt8]) {
        let shape = APIError.Body(error: .init(code: code, message: message, field: nil, problems: nil))
        var body = [UInt8]((try? JSONResponse.encoder.encode(shape)) ?? Data())
        body.append(UInt8(ascii: "\n"))
        return ([.contentType: "application/json", .contentLength: String(body.count)], body)
    }

    /// Loaders and images are bytes; iPXE scripts and boot-loader configs are text; otherwise what the extension says.
    static func contentType(for path: BootFilePath) -> String {
        let name = path.components.last ?? ""
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return "application/octet-stream" }
        let fileExtension = name[name.index(after: dot)...].lowercased()
        switch fileExtension {
        case "ipxe", "cfg", "conf", "txt", "sh", "preseed", "ks": return "text/plain; charset=utf-8"
        case "efi", "kpxe", "pxe", "lkrn", "img", "bin", "iso", "gz", "xz", "zst": return "application/octet-stream"
        default: return MediaType.getMediaType(forExtension: fileExtension)?.description ?? "application/octet-stream"
        }
    }

    /// Weak comparison (RFC 9110 8.8.3.2): `W/"x"` matches `"x"`; `*` matches any current file.
    static func anyWeaklyMatches(_ fieldValues: [String], _ entityTag: String) -> Bool {
        let ours = Self.opaque(entityTag)
        for value in fieldValues {
            for candidate in value.split(separator: ",") {
                let tag = candidate.trimmingCharacters(in: .whitespaces)
                if tag == "*" || Self.opaque(tag) == ours { return true }
            }
        }
        return false
    }

    /// If-Range holds a strong entity tag or the exact Last-Modified date (RFC 9110 13.1.5).
    static func ifRangeMatches(_ value: String, entityTag: String, lastModified: String) -> Bool {
        let value = value.trimmingCharacters(in: .whitespaces)
        if value.hasPrefix("W/") { return false }
        if value.hasPrefix("\"") { return value == entityTag }
        return value == lastModified
    }

    private static func opaque(_ tag: String) -> String { tag.hasPrefix("W/") ? String(tag.dropFirst(2)) : tag }
}

/// One `Range: bytes=…` header against a file of `size` bytes (RFC 9110 14.1.2).
enum ByteRangeSelection: Equatable {
    /// No usable range (absent, malformed, another unit, or several ranges): the whole file, 200.
    case whole
    case partial(Range<Int>)
    /// A well-formed range that starts at or past the end: 416.
    case unsatisfiable

    init(header: String, size: Int) {
        let text = header.trimmingCharacters(in: .whitespaces)
        guard text.lowercased().hasPrefix("bytes=") else {
            self = .whole
            return
        }
        let spec = text.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        // Several ranges may be answered with the whole file; one 200 is simpler than multipart/byteranges.
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else {
            self = .whole
            return
        }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        switch (Self.number(first), Self.number(last)) {
        case (nil, let suffix?) where first.isEmpty:
            // The last `suffix` bytes.
            self = suffix == 0 || size == 0 ? .unsatisfiable : .partial(max(0, size - suffix)..<size)
        case (let start?, nil) where last.isEmpty:
            self = start >= size ? .unsatisfiable : .partial(start..<size)
        case (let start?, let end?) where start <= end:
            self = start >= size ? .unsatisfiable : .partial(start..<(min(end, size - 1) + 1))
        default:
            self = .whole
        }
    }

    /// Decimal digits only; values past `Int.max` saturate (they are past any file's end).
    private static func number(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        var value = 0
        for digit in text.utf8 {
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            if overflow1 || overflow2 { return Int.max }
            value = sum
        }
        return value
    }
}

/// HTTP dates in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 5.6.7), without a
/// formatter or locale.
enum HTTPDate {
    private static let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func format(epochSeconds: Int) -> String {
        let days = epochSeconds >= 0 ? epochSeconds / 86400 : (epochSeconds - 86399) / 86400
        let secondOfDay = epochSeconds - days * 86400
        let (year, month, day) = civil(fromDays: days)
        let weekday = weekdays[((days % 7) + 7) % 7]
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return
            "\(weekday), \(two(day)) \(months[month - 1]) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) GMT"
    }

    /// Seconds since 1970 for an IMF-fixdate; `nil` for anything else (the condition is then ignored).
    static func parse(_ text: String) -> Int? {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: " ")
        guard parts.count == 6, parts[0].count == 4, parts[0].hasSuffix(","), parts[5] == "GMT",
            let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])), let year = Int(parts[3])
        else { return nil }
        let time = parts[4].split(separator: ":")
        guard time.count == 3, let hour = Int(time[0]), let minute = Int(time[1]), let second = Int(time[2]),
            (1...31).contains(day), (0..<24).contains(hour), (0..<60).contains(minute), (0...60).contains(second)
        else { return nil }
        return days(fromCivil: year, month: month + 1, day: day) * 86400 + hour * 3600 + minute * 60 + second
    }

    // Howard Hinnant's days-from-civil and civil-from-days (proleptic Gregorian).
    private static func days(fromCivil year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146097 + dayOfEra - 719468
    }

    private static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let dayOfEra = z - era * 146097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
