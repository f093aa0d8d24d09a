import NIOCore
import ProvisioningModel
import TFTPWire

/// The bytes of one transfer as they travel (netascii already applied), handed out block by block
/// on the transfer's event loop. Octet files in memory are sliced directly; everything else flows
/// through a short read-ahead queue of chunks, so a 40 MiB file never sits in memory whole and
/// netascii (whose byte positions shift) is converted in order. Only data the client has not yet
/// acknowledged is kept.
final class TFTPTransferPayload {
    private enum Source {
        case memory([UInt8])
        case reader(any BootFileReader, fileSize: Int)
    }

    private struct Chunk {
        var start: Int
        var bytes: [UInt8]
        var end: Int { start + bytes.count }
    }

    /// The length of what travels.
    let transferSize: Int
    private let source: Source
    private let netascii: Bool
    private let chunkSize: Int
    /// Octet in memory: random access, no queue.
    private let direct: [UInt8]?
    private var chunks: [Chunk] = []
    /// How far the raw file has been read, and how far the converted stream reaches.
    private var rawOffset = 0
    private var streamEnd = 0
    private(set) var readInFlight = false

    /// - Parameter transferSize: the converted length for netascii (see ``netasciiLength(of:)``).
    init(file: BootFile, netascii: Bool, transferSize: Int, readAhead: Int) {
        self.netascii = netascii
        self.transferSize = transferSize
        self.chunkSize = max(readAhead, 4096)
        switch file.content {
        case .bytes(let bytes):
            source = .memory(bytes)
            direct = netascii ? nil : bytes
        case .reader(let reader):
            source = .reader(reader, fileSize: file.size)
            direct = nil
        }
    }

    /// The length of a file once converted to netascii; reads a streamed file once.
    static func netasciiLength(of file: BootFile, chunkSize: Int = 1 << 20) async throws -> Int {
        switch file.content {
        case .bytes(let bytes):
            return Netascii.encodedLength(of: bytes)
        case .reader(let reader):
            var length = 0
            var offset = 0
            while offset < file.size {
                let bytes = try await reader.read(at: offset, count: min(chunkSize, file.size - offset))
                if bytes.isEmpty { break }
                length += Netascii.encodedLength(of: bytes)
                offset += bytes.count
            }
            return length
        }
    }

    /// Whether `range` of the stream can be copied now.
    func isAvailable(_ range: Range<Int>) -> Bool {
        if direct != nil || range.isEmpty { return true }
        guard let first = chunks.first else { return false }
        return range.lowerBound >= first.start && range.upperBound <= streamEnd
    }

    /// Appends `range` of the stream to `buffer`; the range must be available.
    func copy(_ range: Range<Int>, into buffer: inout ByteBuffer) {
        if let direct {
            buffer.writeBytes(direct[range])
            return
        }
        var position = range.lowerBound
        for chunk in chunks where chunk.end > position && chunk.start < range.upperBound {
            let from = position - chunk.start
            let to = min(range.upperBound, chunk.end) - chunk.start
            buffer.writeBytes(chunk.bytes[from..<to])
            position = chunk.start + to
            if position == range.upperBound { break }
        }
    }

    /// Forgets everything before `offset` (the client has it).
    func release(before offset: Int) {
        while let first = chunks.first, first.end <= offset { chunks.removeFirst() }
    }

    /// Starts reading the next chunk if `offset` (and a chunk beyond it) is not at hand yet and no
    /// read is running. Memory sources answer at once; a reader's work is returned to run off the
    /// event loop, its result to be passed to ``append(rawChunk:)`` back on the loop.
    func readAhead(toReach offset: Int) -> ChunkRead? {
        guard direct == nil, !readInFlight, rawOffset < rawSize, streamEnd < offset + chunkSize else { return nil }
        let count = min(chunkSize, rawSize - rawOffset)
        switch source {
        case .memory(let bytes):
            return .ready(Array(bytes[rawOffset..<(rawOffset + count)]))
        case .reader(let reader, _):
            readInFlight = true
            let offset = rawOffset
            return .pending { try await reader.read(at: offset, count: count) }
        }
    }

    enum ChunkRead {
        case ready([UInt8])
        case pending(@Sendable () async throws -> [UInt8])
    }

    /// Adds the next raw chunk of the file.
    func append(rawChunk: [UInt8]) {
        readInFlight = false
        rawOffset += rawChunk.count
        if rawChunk.isEmpty { rawOffset = rawSize }  // the file shrank: nothing more will come
        let bytes = netascii ? Netascii.encode(rawChunk) : rawChunk
        chunks.append(Chunk(start: streamEnd, bytes: bytes))
        streamEnd += bytes.count
    }

    /// True when the file ended before its announced size (it shrank while being served).
    var endedEarly: Bool { direct == nil && !readInFlight && rawOffset >= rawSize && streamEnd < transferSize }

    private var rawSize: Int {
        switch source {
        case .memory(let bytes): bytes.count
        case .reader(_, let fileSize): fileSize
        }
    }

    /// The reader to close when the transfer ends (memory sources have none).
    func closingReader() -> (any BootFileReader)? {
        if case .reader(let reader, _) = source { return reader }
        return nil
    }
}
