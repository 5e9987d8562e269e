import Foundation
import Synchronization

/// Serializes writes to stdout: events of concurrent commands must not interleave within a line.
let output = Mutex(())

/// Prints one JSON object as one line on stdout (the runner reads them).
func emit(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
    output.withLock { _ in
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}
