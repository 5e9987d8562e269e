import Foundation
import Testing
import TestSupport

/// Several devices and recovery (issue 14 item 3) in headless Chromium, by clicks:
/// `Tests/Browser/meshnode_browser.py page devices`, then the CLI restores the page's backup.
@Suite("Web page: device linking, two devices at once, revoke, key backup and restore", .serialized, .timeLimit(.minutes(10)),
       .enabled(if: chromiumAvailable, "chromium, chromedriver or selenium is missing: install Debian's chromium and chromium-driver, and selenium (`make test-deps`)"))
struct BrowserDeviceTests {
    let browser = BrowserTests()

    @Test("a second profile linked by code gets the chat and rings; the first to accept takes the call and the other stops ringing; a removed device is cut off; a backup restores into a fresh profile (wrong passphrase and edited file refused) and into the CLI, which logs in with it; axe 0 on the new states")
    func devicesAndBackup() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let result = try await browser.runDriver(["page", "devices"], url: "http://127.0.0.1:\(node.httpPort)/")
        let outcome = try #require((result["checks"] as? [String: [String: Any]])?["devices"])
        #expect((outcome["ringing"] as? [String: String])?["owner"] == "answered-elsewhere", "\(outcome)")
        #expect((outcome["revoked"] as? String ?? "").hasPrefix("revoked"), "\(outcome)")
        let states = outcome["states"] as? [String: Int] ?? [:]
        #expect(states.count >= 12 && states.values.allSatisfy { $0 == 0 }, "\(states)")
        print("device states (axe violations): \(states); restore took \(outcome["restoreMs"] ?? "-") ms")

        // The CLI reads the page's PBKDF2 backup and logs in as the name with it.
        let file = try #require(outcome["backupFile"] as? String)
        let name = try #require(outcome["name"] as? String)
        let caller = try #require(outcome["caller"] as? String)
        let directory = TemporaryDirectory("device-backup")
        let passphrase = directory.path + "/passphrase"
        try Data(((outcome["passphrase"] as? String ?? "") + "\n").utf8).write(to: URL(fileURLWithPath: passphrase))
        let identity = directory.path + "/identity"
        let restore = try Subprocess(MeshNodeServer.binary, ["keygen", "--restore", file, "--identity", identity, "--passphrase-file", passphrase])
        #expect(await restore.waitForExit() == 0)
        let chat = try Subprocess(MeshNodeServer.binary, ["chat", "--node", "ws://127.0.0.1:\(node.httpPort)/ws", "--name", name, "--identity", identity,
                                                          "--known-peers", directory.path + "/pins.json", caller, "hello from the restored key"])
        #expect(await chat.waitForExit() == 0, "the CLI could not log in as \(name) with the restored key")
        // The wrong passphrase is refused with its own words.
        try Data("not it\n".utf8).write(to: URL(fileURLWithPath: passphrase))
        let wrong = try Subprocess(MeshNodeServer.binary, ["keygen", "--restore", file, "--identity", directory.path + "/other", "--passphrase-file", passphrase])
        #expect(await wrong.waitForExit() != 0)
        #expect(wrong.output.contains("wrong passphrase"), "\(wrong.output)")
    }

    @Test("the CLI backs up its key with Argon2id and PBKDF2-SHA256 and restores the Argon2id file; the page refuses the Argon2id file with how to make one it reads, and logs in with the PBKDF2 one as the CLI's key")
    func cliBackupsOnThePage() async throws {
        let node = try await MeshNodeServer([], bind: ["127.0.0.1"])
        defer { node.stop() }
        let directory = TemporaryDirectory("cli-backup")
        let identity = directory.path + "/identity", passphrase = directory.path + "/passphrase"
        try Data("tea kettle harbour 19\n".utf8).write(to: URL(fileURLWithPath: passphrase))
        let keygen = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", identity])
        #expect(await keygen.waitForExit() == 0)
        let key = try #require(keygen.output.split(separator: "\n").first { $0.hasPrefix("public key: ") }.map { String($0.dropFirst(12)) })
        let name = "cli-\(UUID().uuidString.prefix(6).lowercased())"
        var files: [String: String] = [:]
        for kdf in ["argon2id", "pbkdf2-sha256"] {
            let file = directory.path + "/\(kdf).json"
            let backup = try Subprocess(MeshNodeServer.binary, ["keygen", "--identity", identity, "--backup", file, "--kdf", kdf, "--name", name, "--passphrase-file", passphrase])
            #expect(await backup.waitForExit(timeout: .seconds(60)) == 0, "\(backup.output)")
            files[kdf] = file
        }
        let restored = directory.path + "/restored"
        let restore = try Subprocess(MeshNodeServer.binary, ["keygen", "--restore", files["argon2id"]!, "--identity", restored, "--passphrase-file", passphrase])
        #expect(await restore.waitForExit(timeout: .seconds(60)) == 0)
        #expect(restore.output.contains("public key: \(key)"), "\(restore.output)")
        let result = try await browser.runDriver(["page", "restore", "--backup", files["pbkdf2-sha256"]!, "--argon2", files["argon2id"]!,
                                                  "--passphrase", "tea kettle harbour 19", "--key", key], url: "http://127.0.0.1:\(node.httpPort)/")
        let outcome = try #require((result["checks"] as? [String: [String: Any]])?["restore"])
        #expect(outcome["key"] as? String == key && outcome["name"] as? String == name, "\(outcome)")
    }
}
