import CCurl
import Crypto
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How far a download is: bytes in the file (including any resumed part), the full size when the
/// server said, and the rate of this run's transfer.
public struct DownloadProgress: Sendable, Hashable {
    public var bytesDone: Int64
    public var bytesTotal: Int64?
    public var bytesPerSecond: Double
    public var finished: Bool
}

/// A finished download: the file's SHA-256 (of all its bytes) and how it was obtained.
public struct DownloadResult: Sendable, Hashable {
    public var sha256: String
    public var size: Int64
    /// Bytes kept from the `.partial` file an earlier run left (0 when it started from scratch).
    public var resumedFrom: Int64
    /// Bytes received over the network in this run.
    public var transferred: Int64
    /// The final HTTP status (200, 206); 0 for file URLs.
    public var status: Int
}

public enum DownloadError: Error, Sendable, Hashable, CustomStringConvertible {
    case httpStatus(url: String, status: Int)
    case unreachable(url: String, reason: String)
    case timedOut(url: String, reason: String)
    case writeFailed(path: String, reason: String)
    case transferFailed(url: String, reason: String)
    case cancelled(url: String)

    public var description: String {
        switch self {
        case .httpStatus(let url, let status): "\(url): the server answered HTTP \(status)"
        case .unreachable(let url, let reason): "\(url): cannot reach the server (\(reason))"
        case .timedOut(let url, let reason): "\(url): timed out (\(reason))"
        case .writeFailed(let path, let reason): "cannot write \(path): \(reason)"
        case .transferFailed(let url, let reason): "\(url): download failed (\(reason))"
        case .cancelled(let url): "\(url): download cancelled"
        }
    }
}

/// Downloads one URL into a file with libcurl: follows redirects, fails on HTTP ≥ 400, gives up on a
/// connection that cannot be made or stalls, and continues a file an interrupted run left behind
/// (a Range request; a server that ignores it and sends the whole file starts the file over).
/// The SHA-256 is computed while the bytes arrive.
public struct CurlDownload: Sendable {
    public var connectTimeoutSeconds = 30
    /// Below this many bytes per second for `lowSpeedSeconds`, the transfer is abandoned.
    public var lowSpeedBytesPerSecond = 1024
    public var lowSpeedSeconds = 60
    /// Shortest time between two progress reports (the last one always comes).
    public var progressInterval: Duration = .milliseconds(200)

    public init() {}

    /// libcurl wants one global init before any handle exists; a static let runs it exactly once.
    private static let initialized: Bool = curl_global_init(Int(CURL_GLOBAL_ALL)) == CURLE_OK

    /// Downloads `url` into `path`, continuing it when it already holds a prefix from an earlier run.
    /// Blocking libcurl work runs on a thread of its own, never on a concurrency thread; cancelling
    /// the task stops the transfer and leaves `path` for the next run to resume.
    public func download(
        _ url: String, to path: String, progress: @escaping @Sendable (DownloadProgress) -> Void = { _ in }
    ) async throws(DownloadError) -> DownloadResult {
        let cancelled = CancelFlag()
        let settings = self
        let result: Result<DownloadResult, DownloadError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let thread = Thread {
                    continuation.resume(
                        returning: Result { () throws(DownloadError) in
                            try settings.downloadBlocking(url, to: path, cancelled: cancelled, progress: progress)
                        })
                }
                thread.name = "anvil-curl"
                thread.start()
            }
        } onCancel: {
            cancelled.value.store(true, ordering: .relaxed)
        }
        return try result.get()
    }

    private func downloadBlocking(
        _ url: String, to path: String, cancelled: CancelFlag, progress: @escaping @Sendable (DownloadProgress) -> Void
    ) throws(DownloadError) -> DownloadResult {
        guard Self.initialized else { throw .transferFailed(url: url, reason: "curl_global_init failed") }
        do {
            return try transfer(url, to: path, resume: true, cancelled: cancelled, progress: progress)
        } catch .httpStatus(_, 416) {
            // The partial file is not a prefix the server can continue (as long as the file or longer): start over once.
            return try transfer(url, to: path, resume: false, cancelled: cancelled, progress: progress)
        }
    }

    private func transfer(
        _ url: String, to path: String, resume: Bool, cancelled: CancelFlag,
        progress: @escaping @Sendable (DownloadProgress) -> Void
    ) throws(DownloadError) -> DownloadResult {
        let fd = open(path, O_WRONLY | O_CREAT | (resume ? 0 : O_TRUNC), 0o644)
        guard fd >= 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let isFileURL = url.hasPrefix("file:")
        // file:// reads are local and quick; only network downloads resume.
        if isFileURL, ftruncate(fd, 0) != 0 { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        let state = TransferState(fd: fd, path: path, isHTTP: !isFileURL, interval: progressInterval, progress: progress)
        try state.hashExistingBytes()

        guard let handle = curl_easy_init() else { throw .transferFailed(url: url, reason: "curl_easy_init failed") }
        defer { curl_easy_cleanup(handle) }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        defer { errorBuffer.deallocate() }
        state.handle = handle

        let context = Unmanaged.passUnretained(state).toOpaque()
        let body: anvil_curl_data_callback = { data, size, count, context in
            Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue().receive(
                UnsafeRawBufferPointer(start: data, count: size * count))
        }
        let header: anvil_curl_data_callback = { data, size, count, context in
            Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue().header(
                UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        let xferinfo: anvil_curl_progress_callback = { context, total, now, _, _ in
            Unmanaged<TransferState>.fromOpaque(context!).takeUnretainedValue().tick(total: Int64(total), now: Int64(now))
        }
        var setup = [
            anvil_curl_set_string(handle, CURLOPT_URL, url),
            anvil_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer),
            anvil_curl_set_string(handle, CURLOPT_PROTOCOLS_STR, "http,https,file"),
            anvil_curl_set_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"),
            anvil_curl_set_long(handle, CURLOPT_FOLLOWLOCATION, 1),
            anvil_curl_set_long(handle, CURLOPT_MAXREDIRS, 10),
            anvil_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, connectTimeoutSeconds),
            anvil_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, lowSpeedBytesPerSecond),
            anvil_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, lowSpeedSeconds),
            anvil_curl_set_long(handle, CURLOPT_NOSIGNAL, 1),
            anvil_curl_set_string(handle, CURLOPT_USERAGENT, "anvil-bootenvs-import"),
            anvil_curl_set_data_callback(handle, CURLOPT_WRITEFUNCTION, body),
            anvil_curl_set_pointer(handle, CURLOPT_WRITEDATA, context),
            anvil_curl_set_data_callback(handle, CURLOPT_HEADERFUNCTION, header),
            anvil_curl_set_pointer(handle, CURLOPT_HEADERDATA, context),
            anvil_curl_set_progress_callback(handle, xferinfo),
            anvil_curl_set_pointer(handle, CURLOPT_XFERINFODATA, context),
            anvil_curl_set_long(handle, CURLOPT_NOPROGRESS, 0),
        ]
        if state.resumeOffset > 0 {
            // CURLOPT_RANGE rather than CURLOPT_RESUME_FROM_LARGE: with the latter libcurl itself fails
            // a 200 reply, where a full body is just as good (the file starts over in the same request).
            setup.append(anvil_curl_set_string(handle, CURLOPT_RANGE, "\(state.resumeOffset)-"))
        }
        if let failed = setup.first(where: { $0 != CURLE_OK }) {
            throw .transferFailed(url: url, reason: "curl setup: \(String(cString: curl_easy_strerror(failed)))")
        }
        state.cancelled = { cancelled.value.load(ordering: .relaxed) }
        let code = curl_easy_perform(handle)
        state.cancelled = nil
        var status = 0
        _ = anvil_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)

        let detail =
            String(cString: errorBuffer).isEmpty ? String(cString: curl_easy_strerror(code)) : String(cString: errorBuffer)
        if let writeError = state.writeError { throw .writeFailed(path: path, reason: writeError) }
        if !isFileURL, status >= 400 { throw .httpStatus(url: url, status: status) }
        switch code {
        case CURLE_OK: break
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            throw .unreachable(url: url, reason: detail)
        case CURLE_OPERATION_TIMEDOUT: throw .timedOut(url: url, reason: detail)
        case CURLE_ABORTED_BY_CALLBACK: throw .cancelled(url: url)
        default: throw .transferFailed(url: url, reason: detail)
        }
        // A 200 with an empty body never reaches the write callback, which is where a resumed file restarts.
        if !state.started, state.resumeOffset > 0, status == 200 { try state.restart() }
        guard fsync(fd) == 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        state.report(finished: true)
        return DownloadResult(
            sha256: state.hasher.finalize().map { String(format: "%02x", $0) }.joined(), size: state.written,
            resumedFrom: state.restarted ? 0 : state.resumeOffset, transferred: state.transferred, status: status)
    }
}

/// Set when the awaiting task is cancelled; the transfer thread polls it from the progress callback.
private final class CancelFlag: Sendable {
    let value = Atomic(false)
}

/// What the libcurl callbacks share during one transfer. Only the transfer's own thread touches it.
private final class TransferState {
    let fd: Int32
    let path: String
    let isHTTP: Bool
    let interval: Duration
    let progress: @Sendable (DownloadProgress) -> Void
    var handle: UnsafeMutableRawPointer?
    var cancelled: (() -> Bool)?
    var hasher = SHA256()
    /// Bytes already in the file when the transfer started.
    var resumeOffset: Int64 = 0
    var written: Int64 = 0
    var transferred: Int64 = 0
    var total: Int64?
    var started = false
    var restarted = false
    var writeError: String?
    var contentRangeStart: Int64?
    let startTime = ContinuousClock.now
    var lastReport: ContinuousClock.Instant?

    init(fd: Int32, path: String, isHTTP: Bool, interval: Duration, progress: @escaping @Sendable (DownloadProgress) -> Void) {
        self.fd = fd
        self.path = path
        self.isHTTP = isHTTP
        self.interval = interval
        self.progress = progress
    }

    /// Feeds the bytes a previous run left into the hash and positions the file after them.
    func hashExistingBytes() throws(DownloadError) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        let reader = open(path, O_RDONLY)
        guard reader >= 0 else { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(reader) }
        while true {
            let count = read(reader, buffer.baseAddress, buffer.count)
            if count < 0 { throw .writeFailed(path: path, reason: String(cString: strerror(errno))) }
            if count == 0 { break }
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: buffer[..<count]))
            written += Int64(count)
        }
        resumeOffset = written
        guard lseek(fd, off_t(written), SEEK_SET) >= 0 else {
            throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }

    func restart() throws(DownloadError) {
        guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else {
            throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        hasher = SHA256()
        written = 0
        restarted = true
    }

    func header(_ line: UnsafeRawBufferPointer) {
        let text = String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("HTTP/") {
            contentRangeStart = nil  // a new response (after a redirect): its own headers count
        } else if text.lowercased().hasPrefix("content-range:") {
            // `Content-Range: bytes 1000-1999/2000`
            let value = text.dropFirst("content-range:".count).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("bytes "), let dash = value.firstIndex(of: "-") {
                contentRangeStart = Int64(value[value.index(value.startIndex, offsetBy: 6)..<dash])
            }
        }
    }

    /// The write callback: returning fewer bytes than given makes libcurl stop with CURLE_WRITE_ERROR.
    func receive(_ bytes: UnsafeRawBufferPointer) -> Int {
        if !started {
            started = true
            var status = 0
            _ = anvil_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &status)
            if isHTTP, status >= 400 { return 0 }
            if resumeOffset > 0, !(status == 206 && contentRangeStart == resumeOffset) {
                // The server sends something other than the continuation (usually the whole file): start over.
                do { try restart() } catch {
                    writeError = "\(error)"
                    return 0
                }
            }
        }
        var offset = 0
        while offset < bytes.count {
            let count = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                writeError = String(cString: strerror(errno))
                return 0
            }
            offset += count
        }
        hasher.update(bufferPointer: bytes)
        written += Int64(bytes.count)
        transferred += Int64(bytes.count)
        return bytes.count
    }

    /// The progress callback: non-zero aborts the transfer (cancellation).
    func tick(total downloadTotal: Int64, now: Int64) -> Int32 {
        if downloadTotal > 0 { total = (restarted ? 0 : resumeOffset) + downloadTotal }
        if cancelled?() == true { return 1 }
        report(finished: false)
        return 0
    }

    func report(finished: Bool) {
        let now = ContinuousClock.now
        if !finished, let lastReport, now - lastReport < interval { return }
        lastReport = now
        let elapsed = (now - startTime) / .seconds(1)
        let rate = elapsed > 0 ? Double(transferred) / elapsed : 0
        progress(
            DownloadProgress(bytesDone: written, bytesTotal: finished ? written : total, bytesPerSecond: rate, finished: finished)
        )
    }
}
