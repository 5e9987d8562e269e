import Foundation

/// A cluster's member list as the client learns it (docs/cluster.md "Clients: several URLs,
/// failover"): each `welcome` of a member started with `--member-url` lists the members alive
/// now, and the client adds them after the URLs it was given, so that one given URL is enough
/// to fail over to the others.
extension SignalingClient {
    /// Learnt URLs kept at most: the node lists at most 32 (`ClusterRouter.maxMemberURLs`).
    static let maxLearntMembers = 32
    /// The longest learnt URL taken, in bytes (the node takes `member-url`s up to 256).
    static let maxMemberURLBytes = 256

    /// Replaces the learnt part of ``urls`` with `members` from the latest `welcome`: the given
    /// URLs stay first and in their order; a member that went away drops out at the next login.
    /// Only `ws://`/`wss://` URLs with a host are taken, and none weaker than the first given
    /// URL's scheme: a client told `wss://` never moves to a cleartext `ws://` member.
    func learnMembers(_ members: [String]?) {
        guard let members else { return }
        let given = Array(urls.prefix(givenURLs))
        let secure = url.hasPrefix("wss://")
        var learnt: [String] = []
        for member in members.prefix(Self.maxLearntMembers) {
            guard member.utf8.count <= Self.maxMemberURLBytes, let parsed = URLComponents(string: member),
                  let scheme = parsed.scheme, scheme == "wss" || (scheme == "ws" && !secure),
                  let host = parsed.host, !host.isEmpty, parsed.user == nil, parsed.fragment == nil else { continue }
            let normal = Self.webSocketURL(member)
            if !given.contains(normal), !learnt.contains(normal) { learnt.append(normal) }
        }
        let active = activeURL
        var updated = given + learnt
        // The member this welcome came from stays reachable even if it did not list itself.
        if !updated.contains(active) { updated.append(active) }
        guard updated != urls else { return }
        urls = updated
        current = updated.firstIndex(of: active) ?? 0
        logger.info("cluster members learnt", metadata: ["urls": "\(updated.joined(separator: " "))"])
    }
}
