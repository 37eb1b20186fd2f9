import Foundation

/// What a finished process said: its exit status and everything it wrote.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
    /// Standard output then standard error, for checks that do not care which stream a message went to.
    public var text: String { stdout + stderr }

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }
}

/// Runs a process with both output streams captured: the one runner the tests share.
///
/// `start` and `finish` are separate so that a test can act on the running process (signal it, watch its
/// files) before collecting its output; `run` is both.
public enum ProcessRunner {
    /// A started process and the pipes of its standard output and error. A tuple, so that callers can still
    /// write `started.0` for the process.
    public typealias Started = (process: Process, stdout: Pipe, stderr: Pipe)

    /// Starts `executable` with `arguments` (and `environment` instead of the inherited one when given); the
    /// caller collects it with `finish`.
    public static func start(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> Started {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        return (p, out, err)
    }

    /// Reads both streams to their end and waits for the process to exit.
    public static func finish(_ started: Started) -> ProcessResult {
        let (p, out, err) = started
        // Read both pipes concurrently so that neither fills up and blocks the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return ProcessResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs `executable` to its end and returns what it said.
    public static func run(_ executable: URL, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        finish(try start(executable, arguments, environment: environment))
    }
}
