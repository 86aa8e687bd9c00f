import Glibc
import QMPBroker

/// A child process started with posix_spawn (no shell), for the demo and tests that
/// run a real QEMU. It is killed when the value goes away, so nothing outlives a test.
/// `@unchecked Sendable`: test and demo support only. Its one mutable member, the reaped
/// exit status, is written by whichever thread waits for the child; callers wait from one
/// thread at a time.
package final class ChildProcess: @unchecked Sendable {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    package let pid: pid_t
    package let arguments: [String]
    private var exitStatus: Int32?

    /// Starts `arguments[0]` (looked up in PATH) with stdout/stderr sent to `outputPath`
    /// (appended) or to /dev/null, and stdin from `inputPath` or /dev/null. `passing`
    /// maps child fd numbers (above 2) to this process's fds the child inherits there;
    /// `environment` is added to (or replaces entries of) this process's environment.
    package init(
        _ arguments: [String], outputPath: String? = nil, inputPath: String? = nil, passing: [Int32: Int32] = [:],
        environment: [String: String] = [:]
    ) throws {
        precondition(!arguments.isEmpty)
        self.arguments = arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath ?? "/dev/null", O_RDONLY, 0)
        let output = outputPath ?? "/dev/null"
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // dup2 to another number clears close-on-exec on the copy.
        for (child, parent) in passing { posix_spawn_file_actions_adddup2(&actions, parent, child) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A fresh process group, so a Ctrl-C meant for the demo is handled by the demo.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var inherited: [String] = []
        var entry = environ
        while let variable = entry.pointee {
            let text = String(cString: variable)
            if !environment.keys.contains(where: { text.hasPrefix("\($0)=") }) { inherited.append(text) }
            entry += 1
        }
        let envp = (inherited + environment.map { "\($0.key)=\($0.value)" }).map { strdup($0) } + [nil]
        defer { envp.forEach { free($0) } }
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw Failure(description: "cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        self.pid = pid
    }

    deinit { kill(signal: SIGKILL) }

    /// Sends a signal unless the process has already been reaped.
    package func kill(signal: Int32 = SIGTERM) {
        guard exitStatus == nil else { return }
        _ = Glibc.kill(pid, signal)
        if signal == SIGKILL { _ = wait(timeout: 5) }
    }

    /// Waits for the process to exit; returns its raw wait status, or nil on timeout.
    @discardableResult
    package func wait(timeout: Double) -> Int32? {
        if let exitStatus { return exitStatus }
        let deadline = Deadline(after: timeout)
        repeat {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) {
                exitStatus = status
                return status
            }
            usleep(2_000)
        } while !deadline.passed
        return nil
    }

    package var isRunning: Bool { wait(timeout: 0) == nil }
}
