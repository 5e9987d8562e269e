/// A test step that could not be carried out (a tool did not start, an answer was malformed).
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
