import Testing
@testable import Media

@Suite struct MediaModuleTests {
    @Test func opusClock() { #expect(MediaDefaults.opusClockRate == 48_000) }
}
