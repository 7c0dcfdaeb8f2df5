import CLocalNLB
import Glibc
import LocalNLBModel
import ProxyProtocol

/// The HTTP/1.1 reverse proxy of Application Load Balancer listeners, in the event loops
/// (docs/alb.md §16): each request is read whole up to its body, checked as ALB's desync mitigation does,
/// routed to a target of the listener's group, and forwarded with ALB's `X-Forwarded-*` and
/// `X-Amzn-Trace-Id` fields; the response comes back with its framing kept, and the client
/// connection stays open for the next request. Every step is non-blocking; a session moves as far as
/// its sockets let it on each event (`advance`).
extension EventLoop {
    /// `tls`: an HTTPS listener's connection, OpenSSL's names of its version and cipher.
    func startHTTP(
        listenerIndex: Int, clientFD: Int32, client: IPEndpoint, node given: IPEndpoint? = nil,
        tls: (version: UnsafePointer<CChar>?, cipher: UnsafePointer<CChar>?) = (nil, nil)
    ) {
        guard let settings = listeners[listenerIndex].shared.http else {
            Socket.closeWithReset(clientFD)
            return
        }
        let session = httpSessions.take { HTTPSession(index: $0) }
        session.generation &+= 1
        session.listenerIndex = listenerIndex
        session.groupIndex = listeners[listenerIndex].shared.groupIndex
        session.client = client
        let endpoint = listeners[listenerIndex].shared.endpoint
        session.node =
            given ?? (endpoint.ip.isUnspecifiedAddress ? (Socket.localEndpoint(clientFD) ?? endpoint) : endpoint)
        session.settings = settings
        (session.tlsVersion, session.tlsCipher) = tls
        session.clientFD = clientFD
        session.id = takeFlowID()
        flowOrder.append(id: session.id, slot: session.index, udp: false, http: true)
        session.started = now
        session.lastActivity = now
        session.inStart = 0
        session.inEnd = 0
        session.responseStart = 0
        session.responseEnd = 0
        session.stageStart = 0
        session.stageEnd = 0
        session.requestPhase = .head
        session.responsePhase = .idle
        session.closeClientAfter = false
        session.clientEOF = false
        session.tunnel = false
        session.clientReadable = true
        session.clientHungUp = false
        session.lingering = false
        session.mayHaveUnread = false
        session.targetIndex = -1
        count(session.groupIndex) { $0.newFlowCount += 1 }
        listeners[listenerIndex].newFlows += 1
        liveHTTPSessions += 1
        let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
        do {
            try poller.add(clientFD, events: interest, token: token(.httpClient, session.index, session.generation))
        } catch {
            return endHTTP(session, resetClient: true)
        }
        advance(session)
    }

    func httpEvent(_ session: HTTPSession, events: UInt32, fromTarget: Bool) {
        guard session.inUse else { return }
        if events & (CLNB_EPOLLIN | CLNB_EPOLLRDHUP | CLNB_EPOLLHUP | CLNB_EPOLLERR) != 0 {
            if fromTarget { session.targetReadable = true } else { session.clientReadable = true }
        }
        if events & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP | CLNB_EPOLLERR) != 0 {
            if fromTarget { session.targetHungUp = true } else { session.clientHungUp = true }
        }
        if fromTarget && session.targetConnecting {
            guard events & (CLNB_EPOLLOUT | CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0 else { return }
            if events & (CLNB_EPOLLERR | CLNB_EPOLLHUP) != 0, Socket.pendingError(session.targetFD) != nil {
                count(session.groupIndex) { $0.tcpTargetResetCount += 1 }
                targetFailed(session)
                return advance(session)
            }
            session.targetConnecting = false
        }
        if !fromTarget && events & CLNB_EPOLLERR != 0 && Socket.pendingError(session.clientFD) != nil {
            count(session.groupIndex) { $0.tcpClientResetCount += 1 }
            return clientGone(session, reset: true)
        }
        advance(session)
    }

    /// Moves the session as far as its sockets allow: read, parse, route, send, in both directions.
    func advance(_ session: HTTPSession) {
        let generation = session.generation
        // Until nothing moves: with edge-triggered events, bytes left in a socket bring no second event.
        while session.inUse && session.generation == generation {
            if !step(session) { break }
        }
        if session.inUse && session.generation == generation {
            session.lastActivity = now
            count(session.groupIndex) { $0.processedBytes &+= session.uncountedBytes }
            session.uncountedBytes = 0
        }
    }

    /// One pass over every direction; whether anything moved.
    func step(_ session: HTTPSession) -> Bool {
        if session.lingering { return lingerStep(session) }
        var progressed = false
        // 1. Client → load balancer.
        if !session.clientEOF && session.clientReadable && session.inEnd < HTTPSession.inCapacity
            && wantsClientBytes(session)
        {
            let room = HTTPSession.inCapacity - session.inEnd
            switch IO.receive(session.clientFD, into: session.inBuffer + session.inEnd, count: room) {
            case .moved(let n):
                if n < room && !session.clientHungUp { session.clientReadable = false }
                session.inEnd += n
                session.uncountedBytes &+= UInt64(n)
                progressed = true
            case .end:
                session.clientEOF = true
                progressed = true
            case .wouldBlock:
                session.clientReadable = false
            case .failed:
                count(session.groupIndex) { $0.tcpClientResetCount += 1 }
                clientGone(session, reset: true)
                return false
            }
        }
        if session.tunnel { return tunnelStep(session) || progressed }
        if session.responsePhase == .head
            && ((session.clientEOF && session.inEnd == session.inStart)
                || (session.clientHungUp && session.requestPhase == .done))
        {
            // The client closed with its request in flight, before any answer (curl giving up on a slow
            // target): ALB's 460, as nginx's 499. A half-close after the request counts as a close too;
            // with the request all read, the FIN is seen by its event (nothing more is read then).
            clientGone(session, reset: false)
            return false
        }
        // 2. A request head complete: route it.
        if session.requestPhase == .head && session.responsePhase == .idle && session.stageEnd == session.stageStart {
            if session.inEnd > session.inStart {
                switch HTTPParser.parseRequest(session.inBytes, into: &session.request) {
                case .complete:
                    routeRequest(session)
                    return session.inUse
                case .malformed:
                    beginExchange(session)
                    return answer(session, status: 400, close: true)
                case .incomplete:
                    if session.inEnd - session.inStart >= HTTPSession.inCapacity {
                        beginExchange(session)
                        // ALB's limit on a request's head: the client hears 400 and the connection closes.
                        return answer(session, status: 400, close: true)
                    }
                    if session.inStart > 0 && session.inEnd == HTTPSession.inCapacity { compactIn(session) }
                }
            }
            if session.clientEOF {
                endHTTP(session, resetClient: false)
                return false
            }
            return progressed
        }
        // 3. Load balancer → target: the forwarded head, then the body as it comes.
        if session.targetFD >= 0 && !session.targetConnecting {
            if session.stageToTarget && session.stageEnd > session.stageStart {
                switch IO.send(
                    session.targetFD, from: session.stage + session.stageStart,
                    count: session.stageEnd - session.stageStart)
                {
                case .moved(let n):
                    session.stageStart += n
                    progressed = true
                    if session.stageStart == session.stageEnd {
                        session.stageStart = 0
                        session.stageEnd = 0
                        session.stageToTarget = false
                        session.sentToTargetAt = now
                    }
                case .wouldBlock, .end:
                    break
                case .failed:
                    return targetFailed(session) && false
                }
            }
            if !session.stageToTarget && session.requestPhase == .body && session.inEnd > session.inStart {
                let available = bodyBytesAvailable(session)
                if available > 0 {
                    switch IO.send(session.targetFD, from: session.inBuffer + session.inStart, count: available) {
                    case .moved(let n):
                        session.inStart += n
                        progressed = true
                        consumedRequestBody(session, n)
                    case .wouldBlock, .end:
                        break
                    case .failed:
                        return targetFailed(session) && false
                    }
                }
            }
            if session.inStart == session.inEnd && session.requestPhase != .head {
                session.inStart = 0
                session.inEnd = 0
            }
        }
        // 4. Target → load balancer: the response head, then its body.
        if session.targetFD >= 0 && !session.targetConnecting && !session.stageToTarget && session.targetReadable
            && (session.responsePhase == .head || session.responsePhase == .body) && !session.targetEOF
            && session.responseEnd < HTTPSession.responseCapacity
            && !(session.responsePhase == .head && session.stageEnd > session.stageStart)
        {
            let room = HTTPSession.responseCapacity - session.responseEnd
            switch IO.receive(session.targetFD, into: session.responseBuffer + session.responseEnd, count: room) {
            case .moved(let n):
                if n < room && !session.targetHungUp { session.targetReadable = false }
                session.responseEnd += n
                session.uncountedBytes &+= UInt64(n)
                progressed = true
            case .end:
                session.targetEOF = true
                progressed = true
            case .wouldBlock:
                session.targetReadable = false
            case .failed:
                session.targetEOF = true
                count(session.groupIndex) { $0.tcpTargetResetCount += 1 }
                if session.responsePhase == .head { return answerTargetFailure(session, status: 502) }
                endHTTP(session, resetClient: true)
                return false
            }
        }
        if session.responsePhase == .head && session.stageEnd == session.stageStart {
            switch HTTPParser.parseResponse(
                session.responseBytes, into: &session.response, requestMethodIsHEAD: session.methodIsHEAD)
            {
            case .complete:
                startResponse(session)
                progressed = true
            case .malformed:
                return answerTargetFailure(session, status: 502)
            case .incomplete:
                if session.targetEOF || session.responseEnd - session.responseStart >= HTTPSession.responseCapacity {
                    return answerTargetFailure(session, status: 502)
                }
            }
        }
        // 5. Load balancer → client: a staged head, then the response body; the head of a target's
        // response and the body bytes already here go in one call.
        if !session.stageToTarget && session.stageEnd > session.stageStart {
            let staged = session.stageEnd - session.stageStart
            let body = session.responsePhase == .body ? responseBytesAvailable(session) : 0
            let sent =
                body > 0
                ? IO.send(
                    session.clientFD, session.stage + session.stageStart, count: staged,
                    then: session.responseBuffer + session.responseStart, count: body)
                : IO.send(session.clientFD, from: session.stage + session.stageStart, count: staged)
            switch sent {
            case .moved(let total):
                let n = min(total, staged)
                if total > n {
                    session.responseStart += total - n
                    session.exchangeBytesOut += total - n
                    consumedResponseBody(session, total - n)
                }
                session.stageStart += n
                session.exchangeBytesOut += n
                progressed = true
                if session.stageStart == session.stageEnd {
                    session.stageStart = 0
                    session.stageEnd = 0
                    if session.responsePhase == .idle && session.closeClientAfter {
                        // The load balancer's own answer, sent: the connection closes.
                        return linger(session)
                    }
                    if session.responsePhase == .idle && session.requestPhase == .done {
                        // Its own answer to a request without a body (a redirect, a fixed response): the next.
                        session.requestPhase = .head
                        if session.inStart == session.inEnd {
                            session.inStart = 0
                            session.inEnd = 0
                        }
                        progressed = true
                    }
                }
            case .wouldBlock, .end:
                break
            case .failed:
                clientGone(session, reset: true)
                return false
            }
        }
        if session.stageEnd == session.stageStart && session.responsePhase == .body {
            let available = responseBytesAvailable(session)
            if available > 0 {
                switch IO.send(session.clientFD, from: session.responseBuffer + session.responseStart, count: available)
                {
                case .moved(let n):
                    session.responseStart += n
                    session.exchangeBytesOut += n
                    consumedResponseBody(session, n)
                    progressed = true
                case .wouldBlock, .end:
                    break
                case .failed:
                    clientGone(session, reset: true)
                    return false
                }
            }
            if session.responsePhase == .body && session.targetEOF && session.responseStart == session.responseEnd {
                if session.response.framing == .untilClose {
                    session.responsePhase = .done
                } else {
                    // The target closed before its body was whole: the client cannot be told otherwise.
                    endHTTP(session, resetClient: true)
                    return false
                }
            }
            if session.responseStart == session.responseEnd {
                session.responseStart = 0
                session.responseEnd = 0
            }
        }
        if session.responsePhase == .done { return finishExchange(session) || true }
        return progressed
    }

    /// Whether reading the client now can help: a head to complete, a body to forward, or a tunnel.
    func wantsClientBytes(_ session: HTTPSession) -> Bool {
        session.tunnel || session.requestPhase != .done
    }

    /// How many of the buffered client bytes belong to the request body.
    func bodyBytesAvailable(_ session: HTTPSession) -> Int {
        let buffered = session.inEnd - session.inStart
        switch session.request.framing {
        case .length:
            return min(buffered, session.requestRemaining)
        case .chunked:
            var copy = session.requestChunks
            switch copy.consume(session.inBytes) {
            case .more: return buffered
            case .ends(let n): return n
            case .malformed: return buffered  // consumedRequestBody ends the exchange
            }
        case .none, .untilClose:
            return 0
        }
    }

    func consumedRequestBody(_ session: HTTPSession, _ n: Int) {
        session.exchangeBytesIn += n
        let sent = UnsafeRawBufferPointer(start: session.inBuffer + session.inStart - n, count: n)
        switch session.request.framing {
        case .length:
            session.requestRemaining -= n
            if session.requestRemaining == 0 { session.requestPhase = .done }
        case .chunked:
            switch session.requestChunks.consume(sent) {
            case .ends: session.requestPhase = .done
            case .more: break
            case .malformed:
                // A body that breaks its own framing: the connection cannot be trusted after it.
                session.closeClientAfter = true
                session.targetReusable = false
                session.requestPhase = .done
            }
        case .none, .untilClose:
            session.requestPhase = .done
        }
    }

    func responseBytesAvailable(_ session: HTTPSession) -> Int {
        let buffered = session.responseEnd - session.responseStart
        switch session.response.framing {
        case .length:
            return min(buffered, session.responseRemaining)
        case .chunked:
            var copy = session.responseChunks
            switch copy.consume(session.responseBytes) {
            case .more, .malformed: return buffered
            case .ends(let n): return n
            }
        case .untilClose:
            return buffered
        case .none:
            return 0
        }
    }

    func consumedResponseBody(_ session: HTTPSession, _ n: Int) {
        let sent = UnsafeRawBufferPointer(start: session.responseBuffer + session.responseStart - n, count: n)
        switch session.response.framing {
        case .length:
            session.responseRemaining -= n
            if session.responseRemaining == 0 { session.responsePhase = .done }
        case .chunked:
            switch session.responseChunks.consume(sent) {
            case .ends: session.responsePhase = .done
            case .more: break
            case .malformed:
                session.targetReusable = false
                session.closeClientAfter = true
                session.responsePhase = .done
            }
        case .untilClose, .none:
            break
        }
    }

    // MARK: Requests

    /// A whole request head: check it, pick a target, connect (or reuse the connection), stage the head.
    /// A request begins: what its access log entry will say starts over.
    func beginExchange(_ session: HTTPSession) {
        session.requestStarted = now
        session.sentToTargetAt = 0
        session.responseAt = 0
        session.exchangeBytesIn = session.request.length
        session.exchangeBytesOut = 0
        session.targetStatus = 0
        session.matchedRule = 0
        session.actionTaken = ""
        session.redirectURL = ""
        session.groupStickySeconds = 0
        session.traceID.removeAll(keepingCapacity: true)
        session.routedTarget = nil
        if options.flowLog.isEnabled {
            session.receivedWallClock = wallClock()
            captureForLog(session)
        }
    }

    func routeRequest(_ session: HTTPSession) {
        let head = session.request
        beginExchange(session)
        // Counted on the listener's group until a rule sends the request to another.
        session.groupIndex = listeners[session.listenerIndex].shared.groupIndex
        count(session.groupIndex) { $0.requestCount += 1 }
        switch session.settings.desyncMode {
        case .defensive:
            if head.desync == .severe { return _ = answer(session, status: 400, close: true) }
            if head.desync == .ambiguous { session.closeClientAfter = true }
        case .strictest:
            if head.desync > .compliant { return _ = answer(session, status: 400, close: true) }
        case .monitor:
            break
        }
        if xffAddressCount(session) > 30 {
            // ALB's 463: more than 30 addresses in X-Forwarded-For.
            return _ = answer(session, status: 463, close: true)
        }
        if head.closes || draining { session.closeClientAfter = true }
        if session.settings.clientKeepAliveNanoseconds > 0
            && now &- session.started >= session.settings.clientKeepAliveNanoseconds
        {
            session.closeClientAfter = true
        }
        let bytes = session.inBytes
        session.methodIsHEAD =
            head.methodEnd == 4 && bytes[0] == 0x48 && bytes[1] == 0x45 && bytes[2] == 0x41
            && bytes[3] == 0x44
        // The listener's rules first (docs/alb.md §20); none matching: its default action.
        let listenerGroup = session.groupIndex
        session.actionTaken = "forward"
        var action = session.settings.defaultAction
        if !session.settings.rules.isEmpty, let index = session.matchingRule(session.settings.rules) {
            session.matchedRule = session.settings.rules[index].priority
            action = session.settings.rules[index].action
        }
        switch action {
        case nil:
            break
        case .forward(let group)?:
            session.groupIndex = group
        case .weightedForward(let weighted, let total, let stickySeconds)?:
            // Target group stickiness: the group the client's AWSALBTG names, while the action has it
            // (whatever its weight now: blue/green moves only new clients); else a draw by weight.
            let stuck = stickySeconds > 0 ? cookieToken(session, named: "AWSALBTG") : nil
            if let stuck, let entry = weighted.first(where: { groups[$0.index].stickyToken == stuck }) {
                session.groupIndex = entry.index
            } else {
                var draw = Int(nextTraceRandom() % UInt64(total))  // the loop's generator: no getrandom call
                for entry in weighted {
                    if draw < entry.weight {
                        session.groupIndex = entry.index
                        break
                    }
                    draw -= entry.weight
                }
            }
            if stickySeconds > 0 {
                session.groupStickyToken = groups[session.groupIndex].stickyToken
                session.groupStickySeconds = stickySeconds
            }
        case .redirect(let settings)?:
            session.actionTaken = "redirect"
            return _ = redirect(session, settings)
        case .fixedResponse(let status, let contentType, let body)?:
            session.actionTaken = "fixed-response"
            return _ = fixedResponse(session, status: status, contentType: contentType, body: body)
        }
        guard groups.indices.contains(session.groupIndex) else { return _ = answer(session, status: 503, close: true) }
        if session.groupIndex != listenerGroup {
            count(listenerGroup) { $0.requestCount -= 1 }
            count(session.groupIndex) { $0.requestCount += 1 }
        }
        session.stickyToken = 0
        guard let targetIndex = stickyTarget(session) ?? pickTarget(session) else {
            return _ = answer(session, status: 503, close: true)
        }
        if groups[session.groupIndex].configuration.stickinessEnabled {
            session.stickyToken = groups[session.groupIndex].targets[targetIndex].stickyToken
        }
        // The target's count is of requests in flight (least_outstanding_requests picks by it).
        let outstanding = groups[session.groupIndex].targets[targetIndex].flowCount
        outstanding.add(1)
        session.outstanding = outstanding
        let target = groups[session.groupIndex].targets[targetIndex].endpoint
        session.routedTarget = target
        if session.targetFD >= 0 && (session.targetIndex != targetIndex || session.targetGroup != session.groupIndex) {
            // Another target this time: the kept connection goes back to the pool for the next request.
            releaseTarget(session)
        }
        if session.targetFD >= 0
            && (!session.targetReusable || session.targetEOF
                || (now &- session.targetIdleSince > Self.idleCheckNanoseconds && Socket.closedByPeer(session.targetFD)))
        {
            // A kept connection the target has closed meanwhile is not used: a new one is.
            closeTarget(session)
        }
        // The head goes into the stage; the body (what follows the head) stays in the input buffer.
        session.stageStart = 0
        session.stageEnd = writeForwardedHead(session, target: target)
        session.stageToTarget = true
        session.inStart += head.length
        session.requestChunks = ChunkedBody()
        switch head.framing {
        case .length(let n):
            session.requestRemaining = n
            session.requestPhase = .body
        case .chunked:
            session.requestPhase = .body
        case .none, .untilClose:
            session.requestRemaining = 0
            session.requestPhase = .done
        }
        session.responsePhase = .head
        session.responseStart = 0
        session.responseEnd = 0
        session.targetEOF = false
        if session.targetFD < 0 && !reuseIdleTarget(session, targetIndex: targetIndex, target: target) {
            connectTarget(session, targetIndex: targetIndex, target: target)
        }
    }

    /// The target the group's algorithm picks for the session's request; round robin passes over targets
    /// in slow start by their share (docs/alb.md §23).
    func pickTarget(_ session: HTTPSession) -> Int? {
        let group = groups[session.groupIndex]
        let key = FlowKey(client: session.client, node: session.node)
        let zone = listeners[session.listenerIndex].shared.zone
        let algorithm = Self.applicationAlgorithm(group.configuration.applicationAlgorithm)
        if group.slowStartEnds > now && algorithm == .roundRobin {
            return group.pickSlowStarting(for: key, nodeZone: zone, now: now) {
                Double(nextTraceRandom() >> 11) * 0x1p-53
            }
        }
        return group.pick(
            for: key, nodeZone: zone, algorithm: algorithm, draw: algorithm == .random ? nextTraceRandom() : nil)
    }

    /// The target a stickiness cookie of the request names (`AWSALB`, or `AWSALBAPP-0` for app_cookie),
    /// when the group is sticky and that target takes requests.
    func stickyTarget(_ session: HTTPSession) -> Int? {
        let group = groups[session.groupIndex]
        guard group.configuration.stickinessEnabled else { return nil }
        let name: StaticString = group.configuration.stickinessType == "app_cookie" ? "AWSALBAPP-0" : "AWSALB"
        guard let token = cookieToken(session, named: name) else { return nil }
        return group.targets.firstIndex { $0.stickyToken == token && $0.takesNewFlows }
    }

    /// The 16 hex digits of the request's cookie `name` (one of the load balancer's own), if it brought one.
    func cookieToken(_ session: HTTPSession, named name: StaticString) -> UInt64? {
        let bytes = session.inBytes
        var token: UInt64?
        for field in session.request.fields where field.known == .cookie {
            HTTPParser.forEachPart(
                UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]), separator: 0x3B
            ) { pair in
                guard token == nil, pair.count == name.utf8CodeUnitCount + 17 else { return }
                for k in 0..<name.utf8CodeUnitCount where pair[k] != name.utf8Start[k] { return }
                guard pair[name.utf8CodeUnitCount] == 0x3D else { return }
                var value: UInt64 = 0
                for byte in pair[(name.utf8CodeUnitCount + 1)...] {
                    guard let digit = ChunkedBody().hexValue(byte) else { return }
                    value = value << 4 | UInt64(digit)
                }
                token = value
            }
        }
        return token
    }

    /// A kept target connection idle longer than this is peeked at before use: the target may have closed it.
    static let idleCheckNanoseconds: UInt64 = 200_000_000

    /// Adds to a group's counters; a listener without a group (its default a redirect or a fixed
    /// response) counts nowhere.
    @inline(__always)
    func count(_ group: Int, _ update: (inout GroupMetrics) -> Void) {
        if group >= 0 && group < groupMetrics.count { update(&groupMetrics[group]) }
    }

    /// A source address for connections to `target`: the node's, when of the target's family.
    func sourceAddress(_ session: HTTPSession, towards target: IPEndpoint) -> IPAddress {
        session.node.ip.isIPv6 == target.ip.isIPv6 ? session.node.ip : nodeAddress(session, family: target.ip)
    }

    func nodeAddress(_ session: HTTPSession, family: IPAddress) -> IPAddress {
        let nodes = listeners[session.listenerIndex].shared.nodes
        return nodes.lazy.flatMap(\.addresses).first { $0.isIPv6 == family.isIPv6 } ?? session.node.ip
    }

    static let idleTarget: Int32 = -1
    static let closedIdleTarget: Int32 = -2

    /// An event of a target connection: to the session using it; for one idle in the pool, a hang-up
    /// is noted, so it is not taken again.
    func httpTargetEvent(fd: Int32, events: UInt32) {
        guard fd >= 0, Int(fd) < httpTargetOwners.count else { return }
        let owner = httpTargetOwners[Int(fd)]
        if owner >= 0 {
            let session = httpSessions[Int(owner)]
            guard session.inUse, session.targetFD == fd else { return }
            httpEvent(session, events: events, fromTarget: true)
        } else if events & (CLNB_EPOLLRDHUP | CLNB_EPOLLHUP | CLNB_EPOLLERR) != 0 {
            httpTargetOwners[Int(fd)] = Self.closedIdleTarget
        }
    }

    /// Marks who uses target connection `fd` (a session's index, or one of the idle marks).
    func setTargetOwner(_ fd: Int32, _ owner: Int32) {
        let slot = Int(fd)
        if slot >= httpTargetOwners.count {
            // Grown now and then, never per request: descriptors are reused lowest first.
            httpTargetOwners += repeatElement(Self.idleTarget, count: slot + 64 - httpTargetOwners.count)
        }
        httpTargetOwners[slot] = owner
    }

    /// Closes a target connection the loop holds (a session's, or one of the pool's).
    func closeTargetDescriptor(_ fd: Int32) {
        if Int(fd) < httpTargetOwners.count { httpTargetOwners[Int(fd)] = Self.idleTarget }
        closeDescriptor(fd)
    }

    /// Takes an idle connection to `target` from the loop's pool (one the target has not closed). It is
    /// still in the epoll set: its events come to the session from now on. One idle past 200 ms is
    /// peeked at as well, in case its hang-up has not been read yet.
    func reuseIdleTarget(_ session: HTTPSession, targetIndex: Int, target: IPEndpoint) -> Bool {
        guard httpPool.count > 0 else { return false }
        let key = HTTPTargetPool.Key(target: target, source: sourceAddress(session, towards: target))
        while let (fd, since) = httpPool.take(key) {
            if httpTargetOwners[Int(fd)] == Self.closedIdleTarget
                || (now &- since > Self.idleCheckNanoseconds && Socket.closedByPeer(fd))
            {
                closeTargetDescriptor(fd)
                continue
            }
            setTargetOwner(fd, Int32(session.index))
            session.targetFD = fd
            session.targetReadable = true
            session.targetHungUp = false
            session.targetKey = key
            session.targetIndex = targetIndex
            session.targetGroup = session.groupIndex
            session.targetReusable = true
            session.targetEOF = false
            session.targetConnecting = false
            return true
        }
        return false
    }

    func connectTarget(_ session: HTTPSession, targetIndex: Int, target: IPEndpoint) {
        let fd: Int32
        do {
            fd = try Socket.stream(for: target.ip)
        } catch {
            count(session.groupIndex) { $0.tcpELBResetCount += 1 }
            return _ = answerTargetFailure(session, status: 502)
        }
        session.targetFD = fd
        session.targetReadable = true
        session.targetHungUp = false
        session.targetIndex = targetIndex
        session.targetGroup = session.groupIndex
        session.targetReusable = true
        session.targetEOF = false
        // The target sees the node's address, as behind every ALB (no bind when the route picks it anyway).
        let source = sourceAddress(session, towards: target)
        session.targetKey = HTTPTargetPool.Key(target: target, source: source)
        let routed: IPAddress?
        if let cached = routeSources[target.ip] {
            routed = cached
        } else {
            routed = Socket.routeSource(towards: target)
            routeSources[target.ip] = routed
        }
        if routed != source {
            Socket.setBindAddressNoPort(fd)
            try? Socket.bind(fd, IPEndpoint(ip: source, port: 0))
        }
        let connected: Bool
        do {
            connected = try Socket.connect(fd, target).isDone
        } catch {
            count(session.groupIndex) { $0.tcpTargetResetCount += 1 }
            return _ = answerTargetFailure(session, status: 502)
        }
        session.targetConnecting = !connected
        if groups[session.groupIndex].configuration.protocolName == .https {
            // An HTTPS group: the loop's TLS bridge talks to the target; the session uses the pair's end.
            guard let context = session.settings.backendTLS,
                let plain = startHTTPTargetTLS(
                    targetFD: fd, connected: connected, context: context, listenerIndex: session.listenerIndex,
                    groupIndex: session.groupIndex, client: session.client, node: session.node)
            else {
                session.targetFD = -1
                Socket.closeWithReset(fd)
                return _ = answerTargetFailure(session, status: 502)
            }
            session.targetFD = plain
            session.targetConnecting = false
        }
        let interest = CLNB_EPOLLIN | CLNB_EPOLLOUT | CLNB_EPOLLRDHUP | CLNB_EPOLLET
        do {
            try poller.add(session.targetFD, events: interest, token: token(.httpTarget, Int(session.targetFD), 0))
        } catch {
            return _ = answerTargetFailure(session, status: 502)
        }
        setTargetOwner(session.targetFD, Int32(session.index))
    }

    /// Gives the target connection back to the loop's pool when it is between exchanges and the target
    /// keeps it open; else closes it.
    func releaseTarget(_ session: HTTPSession) {
        guard session.targetFD >= 0 else { return }
        guard session.targetReusable, !session.targetEOF, !session.targetConnecting, session.responsePhase == .idle,
            let key = session.targetKey
        else { return closeTarget(session) }
        if httpPool.put(key, session.targetFD, now: now) {
            setTargetOwner(session.targetFD, Self.idleTarget)  // stays in the epoll set while it waits
        } else {
            closeTargetDescriptor(session.targetFD)
        }
        session.targetFD = -1
        session.targetIndex = -1
        session.targetReusable = false
    }

    func closeTarget(_ session: HTTPSession) {
        guard session.targetFD >= 0 else { return }
        closeTargetDescriptor(session.targetFD)
        session.targetFD = -1
        session.targetIndex = -1
        session.targetConnecting = false
        session.targetReusable = false
    }

    /// The target refused, reset, or said nothing usable before its response head: 502.
    @discardableResult
    func targetFailed(_ session: HTTPSession) -> Bool {
        if session.responsePhase == .body {
            endHTTP(session, resetClient: true)
            return false
        }
        return answerTargetFailure(session, status: 502)
    }

    /// The request's count on its target ends: answered, failed, or its client gone.
    func endOutstanding(_ session: HTTPSession) {
        session.outstanding?.add(-1)
        session.outstanding = nil
    }

    func answerTargetFailure(_ session: HTTPSession, status: Int) -> Bool {
        endOutstanding(session)
        closeTarget(session)
        session.responsePhase = .idle
        session.requestPhase = .head
        // What is left of the request body cannot be told from the next request: close after.
        return answer(session, status: status, close: true)
    }

    /// The response head came: count its class, write it for the client, and set the body's framing.
    func startResponse(_ session: HTTPSession) {
        let head = session.response
        if head.status >= 100 && head.status < 200 && head.status != 101 {
            // 100 Continue and other interim answers pass on; the final one follows.
            session.stageStart = 0
            session.stageEnd = writeResponseHead(session, final: false)
            session.stageToTarget = false
            session.responseStart += head.length
            return
        }
        if head.status == 101 && session.request.upgrade {
            session.stageStart = 0
            session.stageEnd = writeResponseHead(session, final: true)
            session.stageToTarget = false
            session.responseStart += head.length
            session.tunnel = true
            session.responsePhase = .body
            countTargetStatus(session, head.status)
            return
        }
        countTargetStatus(session, head.status)
        if draining { session.closeClientAfter = true }  // shutting down: this answer is the connection's last
        session.targetStatus = head.status
        session.responseAt = now
        // TargetResponseTime: from the request's routing to the target's response head.
        count(session.groupIndex) { $0.targetResponseNanoseconds &+= now &- session.requestStarted }
        count(session.groupIndex) { $0.targetResponses += 1 }
        if head.closes { session.targetReusable = false }
        session.stageStart = 0
        session.stageEnd = writeResponseHead(session, final: true)
        session.stageToTarget = false
        session.responseStart += head.length
        session.responseChunks = ChunkedBody()
        switch head.framing {
        case .length(let n):
            session.responseRemaining = n
            session.responsePhase = .body
        case .chunked:
            session.responsePhase = .body
        case .untilClose:
            session.targetReusable = false
            session.closeClientAfter = true
            session.responsePhase = .body
        case .none:
            session.responsePhase = .done
        }
    }

    func countTargetStatus(_ session: HTTPSession, _ status: Int) {
        switch status / 100 {
        case 2: count(session.groupIndex) { $0.httpCodeTarget2XX += 1 }
        case 3: count(session.groupIndex) { $0.httpCodeTarget3XX += 1 }
        case 4: count(session.groupIndex) { $0.httpCodeTarget4XX += 1 }
        case 5: count(session.groupIndex) { $0.httpCodeTarget5XX += 1 }
        default: break
        }
    }

    /// The response went whole (and the staged head with it): the next request, or the end.
    func finishExchange(_ session: HTTPSession) -> Bool {
        guard session.stageEnd == session.stageStart else { return false }
        endOutstanding(session)
        session.targetIdleSince = now
        logRequest(session, elbStatus: session.targetStatus)
        if session.requestPhase != .done {
            // The target answered before the request body was all there: that body cannot be skipped
            // safely, so the connection ends here.
            session.closeClientAfter = true
            session.mayHaveUnread = true
            session.targetReusable = false
        }
        session.responsePhase = .idle
        if !session.targetReusable || session.targetEOF { closeTarget(session) }
        if session.closeClientAfter { return linger(session) }
        session.requestPhase = .head
        // A pipelined request may already wait in the buffer.
        if session.inStart == session.inEnd {
            session.inStart = 0
            session.inEnd = 0
        }
        return true
    }

    func compactIn(_ session: HTTPSession) {
        let count = session.inEnd - session.inStart
        if count > 0 { memmove(session.inBuffer, session.inBuffer + session.inStart, count) }
        session.inStart = 0
        session.inEnd = count
    }

    /// After a 101: bytes both ways until either side closes.
    func tunnelStep(_ session: HTTPSession) -> Bool {
        var progressed = false
        if session.stageEnd > session.stageStart {
            switch IO.send(
                session.clientFD, from: session.stage + session.stageStart, count: session.stageEnd - session.stageStart
            )
            {
            case .moved(let n):
                session.stageStart += n
                progressed = true
            case .wouldBlock, .end: return progressed
            case .failed:
                endHTTP(session, resetClient: true)
                return false
            }
            if session.stageStart < session.stageEnd { return progressed }
            session.stageStart = 0
            session.stageEnd = 0
        }
        if session.inEnd > session.inStart {
            switch IO.send(
                session.targetFD, from: session.inBuffer + session.inStart, count: session.inEnd - session.inStart)
            {
            case .moved(let n):
                session.inStart += n
                progressed = true
            case .wouldBlock, .end: break
            case .failed:
                endHTTP(session, resetClient: true)
                return false
            }
            if session.inStart == session.inEnd {
                session.inStart = 0
                session.inEnd = 0
            }
        }
        if !session.targetEOF && session.responseEnd < HTTPSession.responseCapacity {
            switch IO.receive(
                session.targetFD, into: session.responseBuffer + session.responseEnd,
                count: HTTPSession.responseCapacity - session.responseEnd)
            {
            case .moved(let n):
                session.responseEnd += n
                session.uncountedBytes &+= UInt64(n)
                progressed = true
            case .end: session.targetEOF = true
            case .wouldBlock: break
            case .failed:
                endHTTP(session, resetClient: true)
                return false
            }
        }
        if session.responseEnd > session.responseStart {
            switch IO.send(
                session.clientFD, from: session.responseBuffer + session.responseStart,
                count: session.responseEnd - session.responseStart)
            {
            case .moved(let n):
                session.responseStart += n
                progressed = true
            case .wouldBlock, .end: break
            case .failed:
                endHTTP(session, resetClient: true)
                return false
            }
            if session.responseStart == session.responseEnd {
                session.responseStart = 0
                session.responseEnd = 0
            }
        }
        if (session.clientEOF && session.inStart == session.inEnd)
            || (session.targetEOF && session.responseStart == session.responseEnd)
        {
            endHTTP(session, resetClient: false)
            return false
        }
        return progressed
    }

    // MARK: Answers of the load balancer's own

    /// ALB's own answer (400, 463, 502, 503, 504): `Server: awselb/2.0` and its short HTML body.
    @discardableResult
    func answer(
        _ session: HTTPSession, status: Int, close: Bool, location: UnsafeRawBufferPointer? = nil
    ) -> Bool {
        listeners[session.listenerIndex].elbAnswers.record(status)
        if status >= 500 {
            count(session.groupIndex) { $0.httpCodeELB5XX += 1 }
        } else if status >= 400 {
            count(session.groupIndex) { $0.httpCodeELB4XX += 1 }
        } else {
            count(session.groupIndex) { $0.httpCodeELB3XX += 1 }
        }
        if !close {
            // Answered without a body to skip (a redirect of a GET): the connection serves the next request.
            session.requestPhase = .done
            session.inStart += session.request.length
        }
        if close {
            session.closeClientAfter = true
            // A body or a following request may still be on its way.
            session.mayHaveUnread = true
            session.requestPhase = .done
        }
        session.responsePhase = .idle
        var writer = HeadWriter(session.stage, capacity: HTTPSession.stageCapacity)
        let reason = Self.reasonPhrase(status)
        writer.ascii("HTTP/1.1 ")
        writer.decimal(status)
        writer.ascii(" ")
        writer.ascii(reason)
        writer.ascii("\r\n")
        writeOwnFields(&writer, session)
        writer.ascii("Content-Type: text/html\r\nContent-Length: ")
        writer.decimal(Self.answerBodyLength(status, reason))
        if let location {
            writer.ascii("\r\nLocation: ")
            writer.bytes(location)
        }
        writer.ascii(close ? "\r\nConnection: close\r\n\r\n" : "\r\nConnection: keep-alive\r\n\r\n")
        writer.ascii("<html>\r\n<head><title>")
        writer.decimal(status)
        writer.ascii(" ")
        writer.ascii(reason)
        writer.ascii("</title></head>\r\n<body>\r\n<center><h1>")
        writer.decimal(status)
        writer.ascii(" ")
        writer.ascii(reason)
        writer.ascii("</h1></center>\r\n</body>\r\n</html>\r\n")
        session.stageStart = 0
        session.stageEnd = writer.count
        session.stageToTarget = false
        session.exchangeBytesOut = writer.count
        logRequest(session, elbStatus: status)
        session.exchangeBytesOut = -writer.count  // counted again as it is sent
        return true
    }

    /// `load_balancing.algorithm.type` of an HTTP group as the selector's algorithm.
    static func applicationAlgorithm(_ name: String) -> LoadBalancingAlgorithm {
        switch name {
        case "least_outstanding_requests": .leastConnections
        case "weighted_random": .random
        default: .roundRobin
        }
    }

    /// A rule's redirect: `Location` from the RedirectConfig, its `#{…}` parts the request's own.
    func redirect(_ session: HTTPSession, _ settings: RedirectSettings) -> Bool {
        let status = settings.statusCode == "HTTP_302" ? 302 : 301
        let bytes = session.inBytes
        var location = HeadWriter(session.responseBuffer, capacity: HTTPSession.responseCapacity)
        func part(_ text: String) {
            var rest = Substring(text)
            while let open = rest.range(of: "#{") {
                location.text(String(rest[..<open.lowerBound]))
                guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                    location.text(String(rest[open.lowerBound...]))
                    return
                }
                switch rest[open.upperBound..<close] {
                case "protocol": location.text(session.settings.scheme)
                case "host": if let host = session.hostValue(bytes) { location.bytes(host) }
                case "port": location.decimal(Int(session.settings.port))
                case "path": location.bytes(UnsafeRawBufferPointer(rebasing: session.pathBytes(bytes).dropFirst()))
                case "query": location.bytes(session.queryBytes(bytes))
                default: location.text(String(rest[open.lowerBound...close]))
                }
                rest = rest[rest.index(after: close)...]
            }
            location.text(String(rest))
        }
        part(settings.protocolName == "#{protocol}" ? "#{protocol}" : settings.protocolName.lowercased())
        location.ascii("://")
        part(settings.host)
        location.ascii(":")
        part(settings.port)
        part(settings.path)
        let beforeQuery = location.count
        location.ascii("?")
        part(settings.query)
        if location.count == beforeQuery + 1 { location.count = beforeQuery }  // no query: no `?`
        let url = UnsafeRawBufferPointer(start: session.responseBuffer, count: location.count)
        if options.flowLog.isEnabled { session.redirectURL = String(decoding: url, as: UTF8.self) }
        return answer(session, status: status, close: session.request.framing != .none, location: url)
    }

    /// A rule's fixed response: its status, content type and body, from the load balancer itself.
    func fixedResponse(_ session: HTTPSession, status: Int, contentType: String?, body: [UInt8]) -> Bool {
        let close = session.request.framing != .none || session.closeClientAfter
        if close {
            session.closeClientAfter = true
            session.mayHaveUnread = session.request.framing != .none
        }
        session.requestPhase = .done
        session.responsePhase = .idle
        var writer = HeadWriter(session.stage, capacity: HTTPSession.stageCapacity)
        writer.ascii("HTTP/1.1 ")
        writer.decimal(status)
        writer.ascii(" ")
        writer.ascii(Self.reasonPhrase(status))
        writer.ascii("\r\n")
        writeOwnFields(&writer, session)
        writer.ascii("Content-Type: ")
        writer.text(contentType ?? "text/plain")
        writer.ascii("; charset=utf-8\r\nContent-Length: ")
        writer.decimal(body.count)
        writer.ascii(close ? "\r\nConnection: close\r\n\r\n" : "\r\nConnection: keep-alive\r\n\r\n")
        body.withUnsafeBytes { writer.bytes($0) }
        session.stageStart = 0
        session.stageEnd = writer.count
        session.stageToTarget = false
        session.exchangeBytesOut = writer.count
        logRequest(session, elbStatus: status)
        session.exchangeBytesOut = -writer.count
        if !close { session.inStart += session.request.length }
        return true
    }

    /// The fields every answer of the load balancer's own starts with: `Server: awselb/2.0` (unless the
    /// listener's `routing.http.response.server.enabled` is false), `Date`, the listener's response headers.
    func writeOwnFields(_ writer: inout HeadWriter, _ session: HTTPSession) {
        if session.settings.serverHeader { writer.ascii("Server: awselb/2.0\r\n") }
        writer.ascii("Date: ")
        writer.httpDate(now: realtimeSeconds())
        writer.ascii("\r\n")
        if !session.settings.addedHeaders.isEmpty {
            session.settings.addedHeaders.withUnsafeBytes { writer.bytes($0) }
        }
    }

    /// Whether a Host value names a port: a colon after the name (or after an IPv6 literal's `]`).
    static func hostHasPort(_ value: UnsafeRawBufferPointer) -> Bool {
        guard let last = value.lastIndex(of: 0x3A) else { return false }
        return !value[last...].contains(0x5D)  // a colon inside [::1] is not a port's
    }

    /// Whether the response field is one the listener's response headers replace (docs/alb.md §24).
    func isReplaced(_ field: HTTPField, _ bytes: UnsafeRawBufferPointer, _ names: [[UInt8]]) -> Bool {
        let length = Int(field.nameEnd - field.nameStart)
        for name in names where name.count == length {
            var same = true
            for k in 0..<length where HTTPParser.lowercase(bytes[Int(field.nameStart) + k]) != name[k] {
                same = false
                break
            }
            if same { return true }
        }
        return false
    }

    /// The body's length: its fixed markup (92 bytes) and the status line twice.
    static func answerBodyLength(_ status: Int, _ reason: StaticString) -> Int {
        92 + 2 * (4 + reason.utf8CodeUnitCount)
    }

    static func reasonPhrase(_ status: Int) -> StaticString {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 463: return ""
        case 502: return "Bad Gateway"
        case 503: return "Service Temporarily Unavailable"
        case 504: return "Gateway Time-out"
        default: return "Error"
        }
    }

    // MARK: Heads as the load balancer writes them

    /// The request as the target gets it: the request line (HTTP/1.1), ALB's `X-Forwarded-For`,
    /// `-Proto` and `-Port`, the client's `Host`, `X-Amzn-Trace-Id`, then the client's other fields in
    /// order, without hop-by-hop ones (seed 000 shows this order).
    func writeForwardedHead(_ session: HTTPSession, target: IPEndpoint) -> Int {
        let head = session.request
        let bytes = session.inBytes
        var writer = HeadWriter(session.stage, capacity: HTTPSession.stageCapacity)
        writer.bytes(UnsafeRawBufferPointer(rebasing: bytes[0..<head.targetEnd]))
        writer.ascii(" HTTP/1.1\r\n")
        func value(_ field: HTTPField) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)])
        }
        // X-Forwarded-For: the client's own list, then the client (append); as sent (preserve); none (remove).
        switch session.settings.xffMode {
        case .append:
            writer.ascii("X-Forwarded-For: ")
            var first = true
            for field in head.fields where field.known == .xForwardedFor && field.valueEnd > field.valueStart {
                if !first { writer.ascii(", ") }
                writer.bytes(value(field))
                first = false
            }
            if !first { writer.ascii(", ") }
            writer.address(session.client.ip)
            if session.settings.xffClientPort {
                writer.ascii(":")
                writer.decimal(Int(session.client.port))
            }
            writer.ascii("\r\n")
        case .preserve:
            for field in head.fields where field.known == .xForwardedFor {
                writer.ascii("X-Forwarded-For: ")
                writer.bytes(value(field))
                writer.ascii("\r\n")
            }
        case .remove:
            break
        }
        writer.ascii("X-Forwarded-Proto: ")
        writer.text(session.settings.scheme)
        writer.ascii("\r\nX-Forwarded-Port: ")
        writer.decimal(Int(session.settings.port))
        writer.ascii("\r\n")
        for field in head.fields where field.known == .host {
            writer.bytes(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.valueEnd)]))
            if session.settings.appendsListenerPort
                && !Self.hostHasPort(
                    UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
            {
                // routing.http.preserve_host_header.enabled false (AWS's default): the listener's port,
                // when it is not the scheme's own, goes on a Host that has none (docs/alb.md §16).
                writer.ascii(":")
                writer.decimal(Int(session.settings.port))
            }
            writer.ascii("\r\n")
            break
        }
        writeTraceID(&writer, session, bytes: bytes)
        if session.settings.tlsHeaders, let version = session.tlsVersion, let cipher = session.tlsCipher {
            // routing.http.x_amzn_tls_version_and_cipher_suite.enabled (docs/alb.md §24).
            session.settings.tlsVersionField.withUnsafeBytes { writer.bytes($0) }
            writer.bytes(UnsafeRawBufferPointer(start: version, count: strlen(version)))
            writer.ascii("\r\n")
            session.settings.tlsCipherSuiteField.withUnsafeBytes { writer.bytes($0) }
            writer.bytes(UnsafeRawBufferPointer(start: cipher, count: strlen(cipher)))
            writer.ascii("\r\n")
        }
        let dropLength = head.framing == .chunked
        for field in head.fields {
            switch field.known {
            case .host, .xForwardedFor, .xForwardedProto, .xForwardedPort, .xAmznTraceID, .connection, .keepAlive,
                .proxyConnection:
                continue
            case .upgrade where !head.upgrade:
                continue
            case .contentLength where dropLength:
                continue
            case .other where session.settings.dropInvalidHeaderFields && !Self.validFieldName(field, bytes):
                // routing.http.drop_invalid_header_fields.enabled: names outside [-A-Za-z0-9] are dropped.
                continue
            default:
                writer.bytes(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.valueEnd)]))
                writer.ascii("\r\n")
            }
        }
        if head.upgrade { writer.ascii("Connection: Upgrade\r\n") }
        writer.ascii("\r\n")
        return writer.count
    }

    /// A field name ALB calls valid: letters, digits and hyphens only.
    static func validFieldName(_ field: HTTPField, _ bytes: UnsafeRawBufferPointer) -> Bool {
        for k in Int(field.nameStart)..<Int(field.nameEnd) {
            let byte = bytes[k]
            guard
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D
            else { return false }
        }
        return true
    }

    /// `X-Amzn-Trace-Id`: a new `Root=1-<8 hex seconds>-<24 hex>`; when the client sent one with a Root,
    /// a `Self=` of that shape goes first and the client's fields stay (a `Self` it sent is replaced).
    func writeTraceID(_ writer: inout HeadWriter, _ session: HTTPSession, bytes: UnsafeRawBufferPointer) {
        var incoming: UnsafeRawBufferPointer?
        for field in session.request.fields where field.known == .xAmznTraceID {
            incoming = UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)])
        }
        writer.ascii("X-Amzn-Trace-Id: ")
        var hasRoot = false
        if let incoming {
            HTTPParser.forEachPart(incoming, separator: 0x3B) { part in
                if part.count > 5 && HTTPParser.hasPrefixIgnoringCase(part, "root=") { hasRoot = true }
            }
        }
        let traceStart = writer.count
        writer.ascii(hasRoot ? "Self=1-" : "Root=1-")
        writer.hex(UInt64(realtimeSeconds()), digits: 8)
        writer.ascii("-")
        writer.hex(nextTraceRandom() >> 16, digits: 12)
        writer.hex(nextTraceRandom() >> 16, digits: 12)
        defer {
            if options.flowLog.isEnabled {
                // The whole field as the target got it, for the access log's trace_id.
                session.traceID.removeAll(keepingCapacity: true)
                session.traceID.append(
                    contentsOf: UnsafeRawBufferPointer(
                        start: writer.base + traceStart, count: writer.count - traceStart - 2))
            }
        }
        if hasRoot, let incoming {
            HTTPParser.forEachPart(incoming, separator: 0x3B) { part in
                if HTTPParser.hasPrefixIgnoringCase(part, "self=") { return }
                writer.ascii(";")
                writer.bytes(part)
            }
        }
        writer.ascii("\r\n")
    }

    /// The response as the client gets it: HTTP/1.1, the target's status and fields, its own
    /// connection fields replaced by the load balancer's.
    func writeResponseHead(_ session: HTTPSession, final: Bool) -> Int {
        let head = session.response
        let bytes = session.responseBytes
        var writer = HeadWriter(session.stage, capacity: HTTPSession.stageCapacity)
        writer.ascii("HTTP/1.1 ")
        writer.bytes(UnsafeRawBufferPointer(rebasing: bytes[9..<head.targetEnd]))
        writer.ascii("\r\n")
        let tunnel = head.status == 101
        for field in head.fields {
            switch field.known {
            case .connection, .keepAlive, .proxyConnection:
                continue
            case .upgrade where !tunnel:
                continue
            default:
                let names = session.settings.addedHeaderNames
                if !names.isEmpty && isReplaced(field, bytes, names) { continue }
                writer.bytes(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.valueEnd)]))
                writer.ascii("\r\n")
            }
        }
        if final && !session.settings.addedHeaders.isEmpty {
            session.settings.addedHeaders.withUnsafeBytes { writer.bytes($0) }
        }
        if final && session.stickyToken != 0 { writeStickyCookies(&writer, session, head: head, bytes: bytes) }
        if final && session.groupStickySeconds > 0 { writeGroupStickyCookies(&writer, session) }
        if tunnel {
            writer.ascii("Connection: Upgrade\r\n")
        } else if final {
            let closes = session.closeClientAfter || head.framing == .untilClose
            if closes {
                writer.ascii("Connection: close\r\n")
            } else if session.request.minorVersion == 0 {
                writer.ascii("Connection: keep-alive\r\n")
            }
        }
        writer.ascii("\r\n")
        return writer.count
    }

    /// ALB's stickiness cookies: `AWSALB` and `AWSALBCORS` (lb_cookie) on every response, or `AWSALBAPP-0`
    /// (app_cookie) on a response that sets the application's cookie; each names the target.
    func writeStickyCookies(
        _ writer: inout HeadWriter, _ session: HTTPSession, head: HTTPHead, bytes: UnsafeRawBufferPointer
    ) {
        let configuration = groups[session.groupIndex].configuration
        let app = configuration.stickinessType == "app_cookie"
        let seconds = app ? configuration.appCookieDurationSeconds : configuration.lbCookieDurationSeconds
        if app {
            // Only when the application sets its own cookie (stickiness.app_cookie.cookie_name).
            var name = configuration.appCookieName
            let setsIt = name.withUTF8 { want in
                head.fields.contains { field in
                    guard field.known == .setCookie, Int(field.valueEnd - field.valueStart) > want.count else {
                        return false
                    }
                    for k in 0..<want.count where bytes[Int(field.valueStart) + k] != want[k] { return false }
                    return bytes[Int(field.valueStart) + want.count] == 0x3D
                }
            }
            guard setsIt else { return }
        }
        let expires = realtimeSeconds() + seconds
        for cookie: StaticString in app ? ["AWSALBAPP-0"] : ["AWSALB", "AWSALBCORS"] {
            writer.ascii("Set-Cookie: ")
            writer.ascii(cookie)
            writer.ascii("=")
            writer.hex(session.stickyToken, digits: 16)
            writer.ascii("; Expires=")
            writer.httpDate(now: expires)
            writer.ascii("; Path=/")
            if cookie.utf8CodeUnitCount == 10 { writer.ascii("; SameSite=None; Secure") }  // AWSALBCORS
            writer.ascii("\r\n")
        }
    }

    /// Target group stickiness: `AWSALBTG` and `AWSALBTGCORS` (`SameSite=None; Secure`) name the group the
    /// request went to, for the action's `DurationSeconds`, on every response of a sticky forward.
    func writeGroupStickyCookies(_ writer: inout HeadWriter, _ session: HTTPSession) {
        let expires = realtimeSeconds() + session.groupStickySeconds
        for cookie: StaticString in ["AWSALBTG", "AWSALBTGCORS"] {
            writer.ascii("Set-Cookie: ")
            writer.ascii(cookie)
            writer.ascii("=")
            writer.hex(session.groupStickyToken, digits: 16)
            writer.ascii("; Expires=")
            writer.httpDate(now: expires)
            writer.ascii("; Path=/")
            if cookie.utf8CodeUnitCount == 12 { writer.ascii("; SameSite=None; Secure") }  // AWSALBTGCORS
            writer.ascii("\r\n")
        }
    }

    /// How many addresses the client's `X-Forwarded-For` fields hold.
    func xffAddressCount(_ session: HTTPSession) -> Int {
        var count = 0
        let bytes = session.inBytes
        for field in session.request.fields where field.known == .xForwardedFor {
            HTTPParser.forEachToken(
                UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)])
            ) { _ in count += 1 }
        }
        return count
    }

    /// 64 random bits for trace ids: xorshift from a seed the kernel gave.
    func nextTraceRandom() -> UInt64 {
        if traceRandomState == 0 { traceRandomState = UInt64.random(in: 1...UInt64.max) }
        traceRandomState ^= traceRandomState << 13
        traceRandomState ^= traceRandomState >> 7
        traceRandomState ^= traceRandomState << 17
        return traceRandomState
    }

    func realtimeSeconds() -> Int {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return spec.tv_sec
    }

    // MARK: Ending

    /// The answer is out: shut the write side and drop what the client still sends, for a moment.
    func linger(_ session: HTTPSession) -> Bool {
        releaseTarget(session)
        if !session.mayHaveUnread && session.inStart == session.inEnd && !session.request.upgrade {
            // Every byte the client sent was read and answered: an orderly close, at once.
            endHTTP(session, resetClient: false)
            return false
        }
        Socket.shutdownWrite(session.clientFD)
        session.lingering = true
        session.lingerDeadline = now + min(session.settings.idleNanoseconds, Self.lingerNanoseconds)
        return true
    }

    /// How long a closing client connection is read and dropped from at most.
    static let lingerNanoseconds: UInt64 = 2_000_000_000

    func lingerStep(_ session: HTTPSession) -> Bool {
        switch IO.receive(session.clientFD, into: session.inBuffer, count: HTTPSession.inCapacity) {
        case .moved: return true
        case .wouldBlock: return false
        case .end, .failed:
            endHTTP(session, resetClient: false)
            return false
        }
    }

    func endHTTP(_ session: HTTPSession, resetClient: Bool) {
        guard session.clientFD >= 0 else { return }
        endOutstanding(session)
        if session.requestPhase == .head && session.inStart == session.inEnd {
            releaseTarget(session)  // between requests: the target connection serves another client
        } else {
            closeTarget(session)
        }
        // close() takes the socket out of the epoll set (no descriptor of it was duplicated).
        resetClient ? Socket.closeWithReset(session.clientFD) : closeDescriptor(session.clientFD)
        session.clientFD = -1
        count(session.groupIndex) { $0.processedBytes &+= session.uncountedBytes }
        session.uncountedBytes = 0
        session.request.fields.removeAll(keepingCapacity: true)
        session.response.fields.removeAll(keepingCapacity: true)
        session.generation &+= 1
        liveHTTPSessions -= 1
        httpSessions.release(session.index)
        flowOrder.flowEnded { isLive($0) }
        if draining && liveFlows == 0 && liveHTTPSessions == 0 { finished = true }
    }

    /// The client's connection ended under a request (docs/alb.md §19). Before any answer reached it:
    /// ALB's 460, logged and counted in HTTPCode_ELB_4XX_Count. In the middle of the target's answer: that
    /// answer's entry, as far as it went. Both connections close.
    func clientGone(_ session: HTTPSession, reset: Bool) {
        switch session.responsePhase {
        case .head:
            count(session.groupIndex) { $0.httpCodeELB4XX += 1 }
            listeners[session.listenerIndex].elbAnswers.record(460)
            logRequest(session, elbStatus: 460)
        case .body:
            logRequest(session, elbStatus: session.targetStatus)
        case .idle, .done:
            break
        }
        endHTTP(session, resetClient: reset)
    }

    /// Sessions idle past their load balancer's idle timeout close; one waiting on its target that long
    /// gets a 504 first.
    func expireHTTPSessions() {
        httpPool.expire(now: now, close: closeTargetDescriptor)
        guard liveHTTPSessions > 0 else { return }
        for session in httpSessions where session.inUse && session.lingering && now >= session.lingerDeadline {
            endHTTP(session, resetClient: false)
        }
        for session in httpSessions
        where session.inUse && now &- session.lastActivity >= session.settings.idleNanoseconds {
            if session.lingering { continue }
            if session.responsePhase == .head && session.stageEnd == session.stageStart {
                closeTarget(session)
                session.responsePhase = .idle
                answer(session, status: 504, close: true)
                session.lastActivity = now
                advance(session)
            } else {
                endHTTP(session, resetClient: false)
            }
        }
    }

    /// At shutdown: the sessions waiting for a next request end (their target connections close).
    func closeIdleHTTPSessions() {
        for session in httpSessions
        where session.inUse && !session.tunnel && session.requestPhase == .head && session.responsePhase == .idle
            && session.inStart == session.inEnd && session.stageStart == session.stageEnd
        {
            endHTTP(session, resetClient: false)
        }
    }

    func closeHTTPSessions() {
        for session in httpSessions where session.inUse { endHTTP(session, resetClient: true) }
        httpPool.closeAll(closeTargetDescriptor)
    }
}

/// Writes a head into a fixed buffer; what does not fit is cut (the buffer is sized for ALB's limits).
struct HeadWriter {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0

    init(_ base: UnsafeMutableRawPointer, capacity: Int) {
        self.base = base
        self.capacity = capacity
    }

    mutating func bytes(_ source: UnsafeRawBufferPointer) {
        let n = min(source.count, capacity - count)
        if n > 0, let start = source.baseAddress { (base + count).copyMemory(from: start, byteCount: n) }
        count += n
    }

    mutating func ascii(_ text: StaticString) {
        bytes(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func text(_ text: String) {
        var copy = text
        copy.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    mutating func byte(_ value: UInt8) {
        guard count < capacity else { return }
        base.storeBytes(of: value, toByteOffset: count, as: UInt8.self)
        count += 1
    }

    mutating func decimal(_ value: Int) {
        guard value > 0 else { return byte(0x30) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = value
        var k = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            while n > 0 && k < 12 {
                raw[k] = UInt8(0x30 + n % 10)
                n /= 10
                k += 1
            }
            while k > 0 {
                k -= 1
                byte(raw[k])
            }
        }
    }

    mutating func hex(_ value: UInt64, digits: Int) {
        for k in stride(from: digits - 1, through: 0, by: -1) {
            let nibble = UInt8((value >> (UInt64(k) * 4)) & 0xF)
            byte(nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10)
        }
    }

    mutating func address(_ ip: IPAddress) {
        switch ip {
        case .v4(let a):
            let b = a.bytes
            decimal(Int(b.0))
            byte(0x2E)
            decimal(Int(b.1))
            byte(0x2E)
            decimal(Int(b.2))
            byte(0x2E)
            decimal(Int(b.3))
        case .v6:
            text(ip.description)
        }
    }

    /// An IMF-fixdate (`Tue, 08 Dec 2026 00:00:00 GMT`).
    mutating func httpDate(now seconds: Int) {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days: StaticString = "SunMonTueWedThuFriSat"
        let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"
        bytes(UnsafeRawBufferPointer(start: days.utf8Start + Int(parts.tm_wday) * 3, count: 3))
        ascii(", ")
        twoDigits(Int(parts.tm_mday))
        byte(0x20)
        bytes(UnsafeRawBufferPointer(start: months.utf8Start + Int(parts.tm_mon) * 3, count: 3))
        byte(0x20)
        decimal(Int(parts.tm_year) + 1900)
        byte(0x20)
        twoDigits(Int(parts.tm_hour))
        byte(0x3A)
        twoDigits(Int(parts.tm_min))
        byte(0x3A)
        twoDigits(Int(parts.tm_sec))
        ascii(" GMT")
    }

    mutating func twoDigits(_ value: Int) {
        byte(UInt8(0x30 + value / 10))
        byte(UInt8(0x30 + value % 10))
    }
}

extension HTTPParser {
    /// Each `separator`-separated part of a value, trimmed of spaces.
    static func forEachPart(_ value: UnsafeRawBufferPointer, separator: UInt8, _ body: (UnsafeRawBufferPointer) -> Void)
    {
        var start = 0
        var k = 0
        while k <= value.count {
            if k == value.count || value[k] == separator {
                var a = start
                var b = k
                while a < b && value[a] == 0x20 { a += 1 }
                while b > a && value[b - 1] == 0x20 { b -= 1 }
                if b > a { body(UnsafeRawBufferPointer(rebasing: value[a..<b])) }
                start = k + 1
            }
            k += 1
        }
    }

    static func hasPrefixIgnoringCase(_ value: UnsafeRawBufferPointer, _ prefix: StaticString) -> Bool {
        let n = prefix.utf8CodeUnitCount
        guard value.count >= n else { return false }
        for k in 0..<n where lowercase(value[k]) != prefix.utf8Start[k] { return false }
        return true
    }
}
