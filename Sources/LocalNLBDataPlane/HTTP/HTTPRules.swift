import LocalNLBModel
import ProxyProtocol

/// A listener rule as the loops test it (docs/alb.md §20): patterns as bytes (lowercased where AWS
/// matches without case), target groups by index. Matching reads the request head in place and
/// allocates nothing.
package struct HTTPRule: Sendable {
    package var priority: Int
    package var conditions: [HTTPCondition]
    package var action: HTTPAction

    package init(priority: Int, conditions: [HTTPCondition], action: HTTPAction) {
        self.priority = priority
        self.conditions = conditions
        self.action = action
    }
}

package struct HTTPCondition: Sendable {
    package enum Kind: Sendable { case host, path, header, method, query, source }
    package var kind: Kind
    /// `header`: the field's name, lowercased.
    package var headerName: [UInt8] = []
    package var patterns: [[UInt8]] = []
    /// `query`: key (nil: any) and value patterns, lowercased.
    package var pairs: [(key: [UInt8]?, value: [UInt8])] = []
    package var blocks: [CIDR] = []

    package init(_ condition: RuleCondition) {
        func lower(_ text: String) -> [UInt8] { Array(text.lowercased().utf8) }
        switch condition.field {
        case .hostHeader:
            kind = .host
            patterns = condition.values.map(lower)
        case .pathPattern:
            kind = .path
            patterns = condition.values.map { Array($0.utf8) }
        case .httpHeader:
            kind = .header
            headerName = lower(condition.headerName ?? "")
            patterns = condition.values.map(lower)
        case .httpRequestMethod:
            kind = .method
            patterns = condition.values.map { Array($0.utf8) }
        case .queryString:
            kind = .query
            pairs = condition.queryPairs.map { ($0.key.map(lower), lower($0.value)) }
        case .sourceIP:
            kind = .source
            blocks = condition.values.compactMap { CIDR($0) }
        }
    }
}

package enum HTTPAction: Sendable {
    case forward(groupIndex: Int)
    /// Each request to one group, chosen at random by weight (`total`: the weights' sum, above 0);
    /// `stickySeconds` above 0: a client's `AWSALBTG` cookie keeps it on its group (docs/alb.md §21).
    case weightedForward(groups: [(index: Int, weight: Int)], total: Int, stickySeconds: Int)
    case redirect(RedirectSettings)
    case fixedResponse(status: Int, contentType: String?, body: [UInt8])
}

extension HTTPSession {
    /// The first rule of `rules` whose conditions all match the parsed request, if any.
    func matchingRule(_ rules: [HTTPRule]) -> Int? {
        let bytes = inBytes
        for (index, rule) in rules.enumerated() where rule.conditions.allSatisfy({ matches($0, bytes) }) {
            return index
        }
        return nil
    }

    func matches(_ condition: HTTPCondition, _ bytes: UnsafeRawBufferPointer) -> Bool {
        switch condition.kind {
        case .host:
            guard let host = hostValue(bytes) else { return false }
            return condition.patterns.contains { Glob.matches($0, host, foldingCase: true) }
        case .path:
            let path = pathBytes(bytes)
            return condition.patterns.contains { Glob.matches($0, path, foldingCase: false) }
        case .method:
            let method = UnsafeRawBufferPointer(rebasing: bytes[0..<request.methodEnd])
            return condition.patterns.contains { $0.elementsEqual(method) }
        case .header:
            for field in request.fields where Int(field.nameEnd - field.nameStart) == condition.headerName.count {
                var same = true
                for k in 0..<condition.headerName.count
                where HTTPParser.lowercase(bytes[Int(field.nameStart) + k]) != condition.headerName[k] {
                    same = false
                    break
                }
                guard same else { continue }
                let value = UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)])
                if condition.patterns.contains(where: { Glob.matches($0, value, foldingCase: true) }) { return true }
            }
            return false
        case .query:
            let query = queryBytes(bytes)
            var found = false
            HTTPParser.forEachPart(query, separator: 0x26) { pair in
                guard !found else { return }
                let equals = pair.firstIndex(of: 0x3D)
                let key = UnsafeRawBufferPointer(rebasing: pair[..<(equals ?? pair.endIndex)])
                let value = equals.map { UnsafeRawBufferPointer(rebasing: pair[($0 + 1)...]) }
                for wanted in condition.pairs {
                    if let wantedKey = wanted.key {
                        guard let value, Glob.matches(wantedKey, key, foldingCase: true) else { continue }
                        if Glob.matches(wanted.value, value, foldingCase: true) { found = true }
                    } else if Glob.matches(wanted.value, value ?? key, foldingCase: true) {
                        // A pattern without a key matches a value (or a bare key).
                        found = true
                    }
                }
            }
            return found
        case .source:
            return condition.blocks.contains { $0.contains(client.ip) }
        }
    }

    /// The request's host without its port (`Host`, else the authority of an absolute target).
    func hostValue(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard let field = request.fields.first(where: { $0.known == .host }) else { return nil }
        var end = Int(field.valueEnd)
        let start = Int(field.valueStart)
        // host:port, or [v6]:port: the port goes.
        var k = end - 1
        while k > start && bytes[k] >= 0x30 && bytes[k] <= 0x39 { k -= 1 }
        if k > start && bytes[k] == 0x3A && (bytes[start] != 0x5B || bytes[k - 1] == 0x5D) { end = k }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    /// The target's path (before `?`).
    func pathBytes(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = request.targetStart
        while end < request.targetEnd && bytes[end] != 0x3F { end += 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[request.targetStart..<end])
    }

    /// The target's query (after `?`, without it).
    func queryBytes(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = request.targetStart
        while start < request.targetEnd && bytes[start] != 0x3F { start += 1 }
        return UnsafeRawBufferPointer(rebasing: bytes[min(start + 1, request.targetEnd)..<request.targetEnd])
    }
}

/// AWS's rule patterns: `*` any run of characters, `?` exactly one; with or without case.
package enum Glob {
    package static func matches(_ pattern: [UInt8], _ text: UnsafeRawBufferPointer, foldingCase: Bool) -> Bool {
        var p = 0
        var t = 0
        var star = -1
        var resume = 0
        while t < text.count {
            let byte = foldingCase ? HTTPParser.lowercase(text[t]) : text[t]
            if p < pattern.count && (pattern[p] == 0x3F || pattern[p] == byte) {
                p += 1
                t += 1
            } else if p < pattern.count && pattern[p] == 0x2A {
                star = p
                resume = t
                p += 1
            } else if star >= 0 {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == 0x2A { p += 1 }
        return p == pattern.count
    }
}
