import Testing
import STUN
@testable import TURNServer

/// Special-purpose blocks and the server's own addresses as peers (issue 15, finding 9).
@Suite struct PeerAddressPolicyTests {
    let policy = PeerAddressPolicy()

    @Test("6to4 relay anycast, local-use NAT64, Teredo, benchmarking, discard-only, ORCHID and SRv6 blocks are refused")
    func specialPurposeBlocks() {
        for peer in ["192.88.99.1", "64:ff9b:1::1", "64:ff9b:1:ffff::1", "2001::1", "2001:0:4136:e378::1", "2001:2::5",
                     "100::1", "2001:10::1", "5f00::1", "::ffff:192.88.99.1"] {
            #expect(policy.refusal(for: IPAddress(string: peer)!) != nil, "\(peer)")
        }
        // Global unicast stays open: the policy is not a blanket refusal.
        for peer in ["8.8.8.8", "192.88.100.1", "2606:4700::1111", "64:ff9b::808:808", "2001:200::1"] {
            #expect(policy.refusal(for: IPAddress(string: peer)!) == nil, "\(peer)")
        }
    }

    @Test("own listeners are refused always; other own ports unless an allow rule names the address; relay ports stay open")
    func ownAddresses() {
        let own = OwnAddresses(ips: [IPAddress(string: "93.184.216.34")!, IPAddress(string: "2606:2800::1")!],
                               listenerPorts: [3478, 5349], relayPorts: 49_152...65_535)
        let ip = IPAddress(string: "93.184.216.34")!
        #expect(policy.ownAddressRefusal(ip: ip, port: 3478, own: own)?.contains("own listener") == true)
        #expect(policy.ownAddressRefusal(ip: ip, port: 5349, own: own) != nil)
        #expect(policy.ownAddressRefusal(ip: ip, port: 22, own: own)?.contains("own address") == true)
        #expect(policy.ownAddressRefusal(ip: ip, port: 50_000, own: own) == nil, "another allocation's relayed address")
        #expect(policy.ownAddressRefusal(ip: IPAddress(string: "::ffff:93.184.216.34")!, port: 3478, own: own) != nil, "IPv4-mapped")
        #expect(policy.ownAddressRefusal(ip: IPAddress(string: "2606:2800::1")!, port: 8080, own: own) != nil)
        #expect(policy.ownAddressRefusal(ip: IPAddress(string: "93.184.216.35")!, port: 3478, own: own) == nil, "not ours")

        let allowing = PeerAddressPolicy(allow: [CIDR(string: "93.184.216.0/24")!])
        #expect(allowing.ownAddressRefusal(ip: ip, port: 22, own: own) == nil, "the operator opened the address")
        #expect(allowing.ownAddressRefusal(ip: ip, port: 3478, own: own) != nil, "but never its listeners")
    }
}
