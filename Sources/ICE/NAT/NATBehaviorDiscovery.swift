import NIOCore
import STUN

/// RFC 5780 NAT behaviour discovery (§4.3 mapping, §4.4 filtering) as a sans-IO state machine.
///
/// It owns no socket and no clock. The caller feeds it the time (any monotonic origin),
/// datagrams received on one UDP socket and timer expiries, and carries out what it returns:
/// datagrams to send from that socket, and at the end the report. All tests use the same
/// socket, so they all see the same NAT mapping:
///
/// 1. test I: Binding to the server; no answer at all means UDP is blocked. The answer gives
///    the mapped address and OTHER-ADDRESS, the server's alternate IP and port.
/// 2. filtering test II: CHANGE-REQUEST change IP and port. An answer (from the alternate IP
///    and port) means endpoint-independent filtering.
/// 3. filtering test III: CHANGE-REQUEST change port. An answer (from the primary IP, alternate
///    port) means address-dependent filtering; none, address-and-port-dependent.
/// 4. if the mapped address of test I is the local address: no NAT. Otherwise mapping test II
///    to the alternate IP and primary port: the same mapped address means endpoint-independent.
/// 5. mapping test III to the alternate IP and port: the same mapped address as test II means
///    address-dependent, another one address-and-port-dependent.
///
/// Filtering goes first because the mapping tests send to the alternate address, which opens a
/// filtering NAT to it. A response that comes after its test timed out still counts: the
/// verdict is computed from every response seen when the last test ends.
public struct NATBehaviorDiscovery: Sendable {
    public struct Configuration: Sendable {
        /// The STUN server's primary address.
        public var server: SocketAddress
        /// The alternate address to use instead of the server's OTHER-ADDRESS (for the mapping
        /// tests; the filtering tests need a server that answers CHANGE-REQUEST).
        public var alternateServer: SocketAddress?
        /// The address the socket is bound to; its IP must be a real one (not 0.0.0.0) for
        /// "no NAT" to be recognised.
        public var localAddress: SocketAddress
        /// The first retransmission timeout; each later one doubles, up to ``maximumRTO``.
        public var initialRTO: Duration = .milliseconds(250)
        public var maximumRTO: Duration = .milliseconds(1000)
        /// How long one test waits for its response before it counts as unanswered.
        public var testTimeout: Duration = .seconds(3)
        /// SOFTWARE attribute of the requests; nil for none.
        public var software: String? = "meshnode nat-check"

        public init(server: SocketAddress, alternateServer: SocketAddress? = nil, localAddress: SocketAddress) {
            self.server = server
            self.alternateServer = alternateServer
            self.localAddress = localAddress
        }
    }

    /// What the caller must do.
    public enum Output: Sendable {
        case send(ByteBuffer, to: SocketAddress)
        case done(NATBehaviorReport)
    }

    private struct Transaction: Sendable {
        var test: NATTest
        var id: STUNTransactionID
        var datagram: ByteBuffer
        var destination: SocketAddress
        var changeIP: Bool
        var changePort: Bool
        var transmissions = 1
        var rto: Duration
        var nextRetransmit: Duration
        var deadline: Duration
    }

    public let configuration: Configuration
    private var current: Transaction?
    /// Every transaction sent, by ID: late responses are matched to their test.
    private var sent: [STUNTransactionID: Transaction] = [:]
    private var outcomes: [NATTest: NATTestOutcome] = [:]
    private var order: [NATTest] = []
    public private(set) var report: NATBehaviorReport?
    private var started = false

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// When ``timerFired(now:)`` is due next; nil when nothing is pending.
    public var nextTimeout: Duration? {
        guard let current, report == nil else { return nil }
        return min(current.nextRetransmit, current.deadline)
    }

    public var isDone: Bool { report != nil }

    /// Sends test I.
    public mutating func start(now: Duration) -> [Output] {
        guard !started else { return [] }
        started = true
        return begin(.binding, now: now)
    }

    /// A datagram arrived on the socket from `source`.
    public mutating func receive(_ datagram: ByteBuffer, from source: SocketAddress, now: Duration) -> [Output] {
        guard report == nil, STUNMessage.looksLikeSTUN(datagram),
              let message = try? STUNMessage(parsing: datagram),
              message.type.method == .binding,
              message.type.messageClass == .successResponse || message.type.messageClass == .errorResponse,
              let transaction = sent[message.transactionID]
        else { return [] }
        let test = transaction.test
        if let previous = outcomes[test], previous != .timeout { return [] }  // a duplicate
        outcomes[test] = Self.outcome(of: message, from: source)
        guard current?.id == message.transactionID else { return [] }  // late: counted at the end
        current = nil
        return advance(after: test, now: now)
    }

    /// Retransmits or ends the current test; call at ``nextTimeout`` (early calls do nothing).
    public mutating func timerFired(now: Duration) -> [Output] {
        guard report == nil, var transaction = current else { return [] }
        if now >= transaction.deadline {
            current = nil
            outcomes[transaction.test] = .timeout
            sent[transaction.id]?.transmissions = transaction.transmissions
            return advance(after: transaction.test, now: now)
        }
        guard now >= transaction.nextRetransmit else { return [] }
        transaction.transmissions += 1
        transaction.rto = min(transaction.rto * 2, configuration.maximumRTO)
        transaction.nextRetransmit = now + transaction.rto
        current = transaction
        sent[transaction.id] = transaction
        return [.send(transaction.datagram, to: transaction.destination)]
    }

    // MARK: The sequence of tests

    private var otherAddress: SocketAddress? {
        if let alternate = configuration.alternateServer { return alternate }
        if case let .response(_, _, other, _) = outcomes[.binding] { return other }
        return nil
    }

    private var serverDoesRFC5780: Bool {
        if case let .response(_, _, other, _) = outcomes[.binding] { return other != nil }
        return false
    }

    /// With an alternate server on the primary port, mapping tests II and III would go to the
    /// same place: address-dependent and address-and-port-dependent cannot be told apart.
    private var alternatePortIsPrimaryPort: Bool {
        otherAddress?.port == configuration.server.port
    }

    private var mappedByTestI: SocketAddress? {
        if case let .response(_, mapped, _, _) = outcomes[.binding] { return mapped }
        return nil
    }

    private mutating func advance(after test: NATTest, now: Duration) -> [Output] {
        switch test {
        case .binding:
            guard case .response = outcomes[.binding] else { return finish() }
            if serverDoesRFC5780 { return begin(.filteringChangeIPAndPort, now: now) }
            return beginMapping(now: now)
        case .filteringChangeIPAndPort:
            if outcomes[.filteringChangeIPAndPort] == .timeout { return begin(.filteringChangePort, now: now) }
            return beginMapping(now: now)
        case .filteringChangePort:
            return beginMapping(now: now)
        case .mappingAlternateIP:
            if case let .response(_, mapped, _, _) = outcomes[.mappingAlternateIP], mapped != mappedByTestI,
               !alternatePortIsPrimaryPort {
                return begin(.mappingAlternateIPAndPort, now: now)
            }
            return finish()
        case .mappingAlternateIPAndPort:
            return finish()
        }
    }

    private mutating func beginMapping(now: Duration) -> [Output] {
        guard let mapped = mappedByTestI, mapped != configuration.localAddress, otherAddress != nil else { return finish() }
        return begin(.mappingAlternateIP, now: now)
    }

    private mutating func begin(_ test: NATTest, now: Duration) -> [Output] {
        let server = configuration.server
        let destination: SocketAddress
        var changeIP = false
        var changePort = false
        switch test {
        case .binding:
            destination = server
        case .filteringChangeIPAndPort:
            destination = server
            (changeIP, changePort) = (true, true)
        case .filteringChangePort:
            destination = server
            changePort = true
        case .mappingAlternateIP:
            destination = Self.address(ipOf: otherAddress!, port: server.port ?? 3478)
        case .mappingAlternateIPAndPort:
            destination = otherAddress!
        }
        var message = STUNMessage(type: STUNMessageType(.binding, .request))
        if changeIP || changePort {
            message.append(.changeRequest, uint32: (changeIP ? 0x4 : 0) | (changePort ? 0x2 : 0))
        }
        if let software = configuration.software { message.append(.software, string: software) }
        let transaction = Transaction(
            test: test, id: message.transactionID, datagram: message.encode(fingerprint: true),
            destination: destination, changeIP: changeIP, changePort: changePort,
            rto: configuration.initialRTO, nextRetransmit: now + configuration.initialRTO,
            deadline: now + configuration.testTimeout)
        current = transaction
        sent[transaction.id] = transaction
        order.append(test)
        return [.send(transaction.datagram, to: destination)]
    }

    // MARK: The verdict

    private mutating func finish() -> [Output] {
        current = nil
        var report = NATBehaviorReport(localAddress: configuration.localAddress, server: configuration.server)
        report.mappedAddress = mappedByTestI
        report.otherAddress = otherAddress
        for test in order {
            guard let transaction = sent.values.first(where: { $0.test == test }) else { continue }
            report.tests.append(NATTestRecord(
                test: test, destination: transaction.destination, changeIP: transaction.changeIP,
                changePort: transaction.changePort, transmissions: transaction.transmissions,
                outcome: outcomes[test] ?? .timeout))
        }
        judge(into: &report)
        self.report = report
        return [.done(report)]
    }

    private func judge(into report: inout NATBehaviorReport) {
        let server = configuration.server
        switch outcomes[.binding] {
        case .timeout, nil:
            report.udpBlocked = true
            report.notes.append("no response to test I from \(server.compactDescription): UDP blocked (or the server is down)")
            return
        case let .error(code, reason):
            report.notes.append("the server answered test I with error \(code) \(reason)")
            return
        case let .malformed(why):
            report.notes.append("unusable response to test I: \(why)")
            return
        case let .response(source, _, other, origin):
            if source != server { report.notes.append("test I was answered from \(source.compactDescription), not \(server.compactDescription)") }
            if let origin, origin != source {
                report.notes.append("RESPONSE-ORIGIN \(origin.compactDescription) differs from the datagram's source \(source.compactDescription)")
            }
            if other == nil {
                report.notes.append(configuration.alternateServer == nil
                    ? "the server sent no OTHER-ADDRESS: it does not do RFC 5780 behaviour discovery"
                    : "the server sent no OTHER-ADDRESS: filtering cannot be measured; mapping uses --alt-stun")
            }
        }
        report.filtering = judgeFiltering(notes: &report.notes)
        report.mapping = judgeMapping(notes: &report.notes)
    }

    private func judgeFiltering(notes: inout [String]) -> NATFiltering? {
        guard serverDoesRFC5780, let other = otherAddress else { return nil }
        let server = configuration.server
        switch outcomes[.filteringChangeIPAndPort] {
        case let .response(source, _, _, _):
            guard Self.ip(source) != Self.ip(server), source.port != server.port else {
                notes.append("filtering test II was answered from \(source.compactDescription): the server ignored CHANGE-REQUEST")
                return nil
            }
            if source != other { notes.append("filtering test II was answered from \(source.compactDescription), not OTHER-ADDRESS \(other.compactDescription)") }
            return .eif
        case let .error(code, reason):
            notes.append("the server refused CHANGE-REQUEST: \(code) \(reason)")
            return nil
        case let .malformed(why):
            notes.append("unusable response to filtering test II: \(why)")
            return nil
        case .timeout, nil:
            break
        }
        switch outcomes[.filteringChangePort] {
        case let .response(source, _, _, _):
            guard source.port != server.port else {
                notes.append("filtering test III was answered from \(source.compactDescription): the server ignored CHANGE-REQUEST")
                return nil
            }
            if Self.ip(source) != Self.ip(server) {
                notes.append("filtering test III was answered from another IP, \(source.compactDescription)")
            }
            return .adf
        case let .error(code, reason):
            notes.append("the server refused CHANGE-REQUEST (change port): \(code) \(reason)")
            return nil
        case let .malformed(why):
            notes.append("unusable response to filtering test III: \(why)")
            return nil
        case .timeout:
            return .apdf
        case nil:
            return nil
        }
    }

    private func judgeMapping(notes: inout [String]) -> NATMapping? {
        guard let mapped1 = mappedByTestI else { return nil }
        if mapped1 == configuration.localAddress { return NATMapping.none }
        guard otherAddress != nil else { return nil }
        guard case let .response(_, mapped2, _, _) = outcomes[.mappingAlternateIP] else {
            notes.append("no usable response to mapping test II (alternate IP)")
            return nil
        }
        if mapped2 == mapped1 { return .eim }
        if alternatePortIsPrimaryPort {
            notes.append("the alternate address \(otherAddress!.compactDescription) has the primary port: the mapping is not endpoint-independent, but address- and address-and-port-dependent cannot be told apart")
            return nil
        }
        guard case let .response(_, mapped3, _, _) = outcomes[.mappingAlternateIPAndPort] else {
            notes.append("no usable response to mapping test III (alternate IP and port)")
            return nil
        }
        return mapped3 == mapped2 ? .adm : .apdm
    }

    // MARK: Helpers

    private static func outcome(of message: STUNMessage, from source: SocketAddress) -> NATTestOutcome {
        if message.type.messageClass == .errorResponse {
            let error = try? message.errorCode()
            return .error(code: error?.code.rawValue ?? 0, reason: error?.reason ?? "")
        }
        let mapped: SocketAddress?
        do {
            mapped = try message.xorAddress(.xorMappedAddress) ?? message.address(.mappedAddress)
        } catch {
            return .malformed("\(error)")
        }
        guard let mapped else { return .malformed("no XOR-MAPPED-ADDRESS or MAPPED-ADDRESS") }
        let other = try? message.address(.otherAddress)
        let origin = try? message.address(.responseOrigin)
        return .response(source: source, mapped: mapped, otherAddress: other ?? nil, responseOrigin: origin ?? nil)
    }

    private static func ip(_ address: SocketAddress) -> IPAddress? { IPAddress(address) }

    private static func address(ipOf address: SocketAddress, port: Int) -> SocketAddress {
        IPAddress(address)?.socketAddress(port: port) ?? address
    }
}
