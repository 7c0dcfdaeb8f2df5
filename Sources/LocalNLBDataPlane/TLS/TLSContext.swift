import CLocalNLBTLS
import LocalNLBModel

/// What OpenSSL said when a TLS call failed: its error queue, as one line.
package struct TLSError: Error, CustomStringConvertible, Sendable {
    package var description: String

    package init(_ what: String) {
        var reasons: [String] = []
        while case let code = ERR_get_error(), code != 0 {
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        description = reasons.isEmpty ? what : "\(what): \(reasons.joined(separator: "; "))"
    }
}

/// A certificate chain (leaf first) and its private key, in PEM: what ACM's ImportCertificate takes.
package struct CertificatePEM: Sendable, Equatable {
    package var chain: String
    package var key: String

    package init(chain: String, key: String) {
        self.chain = chain
        self.key = key
    }
}

/// AWS's ALPN policies (NLB guide, "TLS listeners"): the protocols offered, in preference order.
package enum ALPNPolicy {
    package static let protocols: [String: [String]] = [
        "HTTP1Only": ["http/1.1", "http/1.0"], "HTTP2Only": ["h2"], "HTTP2Optional": ["http/1.1", "http/1.0", "h2"],
        "HTTP2Preferred": ["h2", "http/1.1", "http/1.0"], "None": [],
    ]
}

/// One TLS listener's server side: its certificate, its security policy's protocol versions and
/// ciphers (AWS's names are OpenSSL's), its ALPN policy, no renegotiation. Shared by every loop:
/// OpenSSL's SSL_CTX takes new sessions from any thread.
package final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    /// The ALPN policy's list in the wire format (length-prefixed), for the selection callback.
    private let alpnWire: UnsafeMutableBufferPointer<UInt8>?
    package let policy: SSLPolicy

    /// The certificates besides the default (AddListenerCertificates), each in a context of its own
    /// with the same policy, chosen by the client's SNI name (`selectByName`).
    private var alternates: [(names: [String], context: TLSContext)] = []

    /// A listener's server side: `certificates[0]` the default, the others chosen by SNI as AWS does
    /// (a certificate whose names hold the client's name exactly, else by a wildcard; else the default).
    package convenience init(certificates: [CertificatePEM], policy: SSLPolicy, alpnPolicy: String) throws(TLSError) {
        guard let first = certificates.first else { throw TLSError("no certificate") }
        try self.init(certificate: first, policy: policy, alpnPolicy: alpnPolicy)
        guard certificates.count > 1 else { return }
        defaultNames = try CertificateInfo.validated(first).alternativeNames.map { $0.lowercased() }
        for certificate in certificates.dropFirst() {
            let names = try CertificateInfo.validated(certificate).alternativeNames
            alternates.append((names, try TLSContext(certificate: certificate, policy: policy, alpnPolicy: alpnPolicy)))
        }
        clnb_ssl_ctx_set_servername_callback(
            context,
            { ssl, _, argument in
                let owner = Unmanaged<TLSContext>.fromOpaque(argument!).takeUnretainedValue()
                if let ssl, let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
                    let chosen = owner.selectByName(String(cString: name).lowercased())
                {
                    SSL_set_SSL_CTX(ssl, chosen.context)
                }
                return clnb_tlsext_err_ok()
            }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// The alternate certificate for a client's SNI name: an exact name first, then a wildcard
    /// (`*.example.com` holds `api.example.com`, not `example.com` nor `a.b.example.com`).
    func selectByName(_ name: String) -> TLSContext? {
        if defaultNames.contains(name) { return nil }
        if let exact = alternates.first(where: { $0.names.contains { $0.lowercased() == name } }) {
            return exact.context
        }
        guard let dot = name.firstIndex(of: ".") else { return nil }
        let wildcard = "*" + name[dot...]
        if defaultNames.contains(wildcard) { return nil }
        return alternates.first { $0.names.contains { $0.lowercased() == wildcard } }?.context
    }

    /// The default certificate's names, lower-cased (it wins a name it holds).
    private var defaultNames: [String] = []

    package init(certificate: CertificatePEM, policy: SSLPolicy, alpnPolicy: String) throws(TLSError) {
        guard let context = SSL_CTX_new(TLS_server_method()) else { throw TLSError("SSL_CTX_new") }
        self.context = context
        self.policy = policy
        let protocols = ALPNPolicy.protocols[alpnPolicy] ?? []
        if protocols.isEmpty {
            alpnWire = nil
        } else {
            // Two bytes of length, then the list: the callback's argument is all it has.
            let list = protocols.flatMap { [UInt8($0.utf8.count)] + Array($0.utf8) }
            let bytes = [UInt8(list.count >> 8), UInt8(list.count & 0xFF)] + list
            let wire = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: bytes.count)
            _ = wire.initialize(from: bytes)
            alpnWire = wire
        }
        clnb_ssl_ctx_defaults(context)
        try configure(policy)
        try use(certificate)
        if let alpnWire {
            SSL_CTX_set_alpn_select_cb(
                context,
                { _, out, outLength, offered, offeredLength, argument in
                    // The policy's order decides (the server's preference), as AWS's policies list them.
                    let wire = argument!.assumingMemoryBound(to: UInt8.self)
                    let count = UInt32(wire[0]) << 8 | UInt32(wire[1])
                    var chosen: UnsafeMutablePointer<UInt8>?
                    var chosenLength: UInt8 = 0
                    let result = SSL_select_next_proto(
                        &chosen, &chosenLength, wire + 2, count, offered, offeredLength)
                    guard result == OPENSSL_NPN_NEGOTIATED, let chosen else { return SSL_TLSEXT_ERR_NOACK }
                    out?.pointee = UnsafePointer(chosen)
                    outLength?.pointee = chosenLength
                    return SSL_TLSEXT_ERR_OK
                }, UnsafeMutableRawPointer(alpnWire.baseAddress!))
        }
    }

    deinit {
        SSL_CTX_free(context)
        alpnWire?.deallocate()
    }

    /// Mutual TLS in verify mode: a client without a certificate that chains to one of `bundle`'s CA
    /// certificates is refused in the handshake (expiry forgiven with `ignoreExpiry`). The certificates
    /// chosen by SNI verify alike. Returns how many CA certificates the bundle holds.
    /// Mutual TLS's identity filters: a verified client is admitted only if one matches (none: all).
    package private(set) var identityFilters: [MutualAuthentication.IdentityFilter] = []

    /// Whether a verified client's certificate passes the identity filters.
    func admits(_ certificate: OpaquePointer) -> Bool {
        guard !identityFilters.isEmpty else { return true }
        let identity = CertificateInfo.identity(of: certificate)
        return identityFilters.contains { filter in (identity[filter.field] ?? []).contains(where: filter.matches) }
    }

    @discardableResult
    package func verifyClients(
        bundle: String, ignoreExpiry: Bool, filters: [MutualAuthentication.IdentityFilter] = [],
        revocationLists: [String] = []
    ) throws(TLSError) -> Int {
        identityFilters = filters
        var crls: [OpaquePointer] = []
        defer { crls.forEach { X509_CRL_free($0) } }
        for pem in revocationLists {
            let found = try Self.revocationLists(pem)
            guard !found.isEmpty else { throw TLSError("a revocation list holds no PEM X509 CRL") }
            crls += found
        }
        let authorities = try Self.certificates(bundle)
        defer { authorities.forEach { X509_free($0) } }
        guard !authorities.isEmpty else { throw TLSError("the trust store's bundle holds no PEM certificate") }
        for target in [self] + alternates.map(\.context) {
            guard let store = X509_STORE_new() else { throw TLSError("X509_STORE_new") }
            for authority in authorities where X509_STORE_add_cert(store, authority) != 1 {
                X509_STORE_free(store)
                throw TLSError("the trust store's bundle")
            }
            for crl in crls where X509_STORE_add_crl(store, crl) != 1 {
                X509_STORE_free(store)
                throw TLSError("a revocation list")
            }
            clnb_ssl_ctx_verify_clients(target.context, store, ignoreExpiry ? 1 : 0, crls.isEmpty ? 0 : 1)
        }
        return authorities.count
    }

    /// The policy's versions (min to max) and ciphers: TLS 1.3 suites by `SSL_CTX_set_ciphersuites`,
    /// the older ones by `SSL_CTX_set_cipher_list`, in AWS's priority order (the server's preference).
    private func configure(_ policy: SSLPolicy) throws(TLSError) {
        let versions: [String: Int32] = [
            "TLSv1": clnb_tls1_version(), "TLSv1.1": clnb_tls1_1_version(), "TLSv1.2": clnb_tls1_2_version(),
            "TLSv1.3": clnb_tls1_3_version(),
        ]
        let numbers = policy.protocols.compactMap { versions[$0] }
        guard let low = numbers.min(), let high = numbers.max() else { throw TLSError("\(policy.name): no protocol") }
        // OpenSSL 3 keeps TLS 1.0 and 1.1 out at its default security level; a policy that offers them
        // is served at level 0, as AWS serves those clients.
        if low < clnb_tls1_2_version() { clnb_ssl_ctx_set_security_level(context, 0) }
        guard clnb_ssl_ctx_set_min_proto(context, low) == 1, clnb_ssl_ctx_set_max_proto(context, high) == 1 else {
            throw TLSError("\(policy.name): protocol versions")
        }
        let tls13 = policy.ciphers.filter { $0.hasPrefix("TLS_") }
        let older = policy.ciphers.filter { !$0.hasPrefix("TLS_") }
        if !older.isEmpty, SSL_CTX_set_cipher_list(context, older.joined(separator: ":")) != 1 {
            throw TLSError("\(policy.name): this OpenSSL cannot offer its ciphers")
        }
        if SSL_CTX_set_ciphersuites(context, tls13.joined(separator: ":")) != 1 {
            throw TLSError("\(policy.name): this OpenSSL cannot offer its TLS 1.3 suites")
        }
    }

    private func use(_ certificate: CertificatePEM) throws(TLSError) {
        let chain = try Self.certificates(certificate.chain)
        defer { chain.forEach { X509_free($0) } }
        guard let leaf = chain.first else { throw TLSError("the certificate chain holds no certificate") }
        if X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0 { throw TLSError("the certificate has expired") }
        guard SSL_CTX_use_certificate(context, leaf) == 1 else { throw TLSError("the certificate") }
        for intermediate in chain.dropFirst() where clnb_ssl_ctx_add_chain_cert(context, intermediate) != 1 {
            throw TLSError("the certificate chain")
        }
        guard let key = try Self.privateKey(certificate.key) else { throw TLSError("no private key in the PEM") }
        defer { EVP_PKEY_free(key) }
        guard SSL_CTX_use_PrivateKey(context, key) == 1, SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError("the private key does not match the certificate")
        }
    }

    /// Every certificate of a PEM text, in order.
    package static func certificates(_ pem: String) throws(TLSError) -> [OpaquePointer] {
        var found: [OpaquePointer] = []
        try withMemoryBIO(pem) { bio in
            while let certificate = PEM_read_bio_X509(bio, nil, nil, nil) { found.append(certificate) }
        }
        ERR_clear_error()  // the read that found no more left its "no start line" behind
        return found
    }

    /// Frees CRLs `revocationLists` gave.
    package static func free(_ lists: [OpaquePointer]) { lists.forEach { X509_CRL_free($0) } }

    /// How many certificates the CRLs of a PEM text revoke.
    package static func revokedEntries(_ pem: String) throws(TLSError) -> Int {
        let lists = try revocationLists(pem)
        defer { lists.forEach { X509_CRL_free($0) } }
        return lists.reduce(0) { total, crl in
            guard let revoked = X509_CRL_get_REVOKED(crl) else { return total }
            return total + Int(clnb_revoked_count(revoked))
        }
    }

    /// Every X509 CRL of a PEM text.
    package static func revocationLists(_ pem: String) throws(TLSError) -> [OpaquePointer] {
        var found: [OpaquePointer] = []
        try withMemoryBIO(pem) { bio in
            while let crl = PEM_read_bio_X509_CRL(bio, nil, nil, nil) { found.append(crl) }
        }
        ERR_clear_error()
        return found
    }

    static func privateKey(_ pem: String) throws(TLSError) -> OpaquePointer? {
        var key: OpaquePointer?
        try withMemoryBIO(pem) { bio in key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) }
        if key == nil { ERR_clear_error() }  // "no key" is the whole story; the decoders' attempts are not
        return key
    }

    static func withMemoryBIO(_ text: String, _ body: (OpaquePointer) -> Void) throws(TLSError) {
        let bytes = Array(text.utf8)
        let made = bytes.withUnsafeBytes { raw -> Bool in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return false }
            defer { BIO_free(bio) }
            body(bio)
            return true
        }
        if !made { throw TLSError("BIO_new_mem_buf") }
    }
}

/// The client side towards `TLS` target groups: the backend policy AWS uses (TLS13-1-0-2021-06 behind a
/// TLS 1.3 listener policy, else 2016-08), and no verification of the target's certificate, as AWS does.
package final class TLSClientContext: @unchecked Sendable {
    let context: OpaquePointer
    package let policy: SSLPolicy

    /// The backend policy of a listener's policy.
    package static func backendPolicy(for listenerPolicy: SSLPolicy) -> SSLPolicy {
        let name =
            listenerPolicy.protocols.contains("TLSv1.3")
            ? "ELBSecurityPolicy-TLS13-1-0-2021-06" : SSLPolicy.defaultName
        return SSLPolicy.all.first { $0.name == name }!
    }

    package init(policy: SSLPolicy) throws(TLSError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TLSError("SSL_CTX_new") }
        self.context = context
        self.policy = policy
        clnb_ssl_ctx_defaults(context)
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        let versions: [String: Int32] = [
            "TLSv1": clnb_tls1_version(), "TLSv1.1": clnb_tls1_1_version(), "TLSv1.2": clnb_tls1_2_version(),
            "TLSv1.3": clnb_tls1_3_version(),
        ]
        let numbers = policy.protocols.compactMap { versions[$0] }
        if let low = numbers.min(), low < clnb_tls1_2_version() { clnb_ssl_ctx_set_security_level(context, 0) }
        if let low = numbers.min(), let high = numbers.max() {
            _ = clnb_ssl_ctx_set_min_proto(context, low)
            _ = clnb_ssl_ctx_set_max_proto(context, high)
        }
        let older = policy.ciphers.filter { !$0.hasPrefix("TLS_") }
        if !older.isEmpty { _ = SSL_CTX_set_cipher_list(context, older.joined(separator: ":")) }
        _ = SSL_CTX_set_ciphersuites(context, policy.ciphers.filter { $0.hasPrefix("TLS_") }.joined(separator: ":"))
    }

    deinit { SSL_CTX_free(context) }
}
