import Foundation

/// Python's http.server on 127.0.0.1 (a port the kernel picks) serving a directory, as the image
/// server and callback receiver for task scripts: GET serves files, every POST is answered 204 and
/// its path appended to `posts`. Stopped by PID.
public final class LocalHTTPServer: Sendable {
    public let port: Int
    public let root: String
    private let process: ChildProcess
    private let postLog: String

    public var url: String { "http://127.0.0.1:\(port)" }

    static let program = """
        import http.server, os, sys
        root, posts, port_file = sys.argv[1:4]
        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=root, **kwargs)
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with open(posts, "a") as log:
                    log.write(self.path + "\\n")
                self.send_response(204)
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        with open(port_file + ".new", "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(port_file + ".new", port_file)
        server.serve_forever()
        """

    /// Starts serving `root`; `scratch` holds the program, its log and the POST log.
    public init(root: String, scratch: TemporaryDirectory) async throws {
        let script = scratch.file("http-server.py")
        let portFile = scratch.file("http-server.port")
        postLog = scratch.file("http-server.posts")
        try Self.program.write(toFile: script, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: postLog, contents: nil)
        let process = try ChildProcess.spawn(
            ["/usr/bin/python3", script, root, postLog, portFile], stdout: scratch.file("http-server.log"),
            stderr: scratch.file("http-server.log"))
        // Python starts in well under a second; 20 s covers a loaded machine.
        var port: Int?
        for _ in 0..<400 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let number = Int(text) {
                port = number
                break
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else {
            process.killAndWait()
            let log = (try? String(contentsOfFile: scratch.file("http-server.log"), encoding: .utf8)) ?? ""
            throw AnvilServerError("python3 http.server did not start: \(log)")
        }
        self.port = port
        self.root = root
        self.process = process
    }

    /// Paths (with query) of the POSTs received so far.
    public var posts: [String] {
        ((try? String(contentsOfFile: postLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func stop() { process.killAndWait() }
}
