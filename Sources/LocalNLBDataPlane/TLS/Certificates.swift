import CLocalNLBTLS
import LocalNLBModel
import ProxyProtocol

/// Certificates made here with OpenSSL, mkcert's model: a local certificate authority made once and
/// kept, and server certificates it signs for the names a load balancer answers to (its DNS name, its
/// node addresses, localhost). A client that trusts the CA's certificate verifies them.
package enum LocalCertificates {
    /// A new certificate authority: an ECDSA P-256 key and its self-signed certificate, ten years.
    package static func makeAuthority(commonName: String) throws(TLSError) -> CertificatePEM {
        guard let key = clnb_ec_key("P-256") else { throw TLSError("a P-256 key") }
        defer { EVP_PKEY_free(key) }
        let certificate = try build(
            subject: commonName, key: key, issuer: nil, days: 3650,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"), (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ])
        defer { X509_free(certificate) }
        return CertificatePEM(chain: try pemCertificate(certificate), key: try pemKey(key))
    }

    /// A server certificate for `names` (DNS names and IP addresses alike), signed by `authority`:
    /// ECDSA P-256 (`keyType` "EC_prime256v1", ACM's spelling) or RSA 2048 ("RSA_2048"), 395 days as an
    /// ACM certificate. The chain is the leaf, then the authority's certificate.
    package static func issue(
        names: [String], keyType: String = "EC_prime256v1", days: Int = 395, by authority: CertificatePEM
    ) throws(TLSError) -> CertificatePEM {
        let curves = ["EC_prime256v1": "P-256", "EC_secp384r1": "P-384", "EC_secp521r1": "P-521"]
        let key: OpaquePointer?
        if let curve = curves[keyType] {
            key = clnb_ec_key(curve)
        } else if keyType.hasPrefix("RSA_"), let bits = Int(keyType.dropFirst(4)), [2048, 3072, 4096].contains(bits) {
            key = clnb_rsa_key(bits)
        } else {
            throw TLSError("key type \(keyType): one of RSA_2048, RSA_3072, RSA_4096, EC_prime256v1, EC_secp384r1")
        }
        guard let key else { throw TLSError("a \(keyType) key") }
        defer { EVP_PKEY_free(key) }
        let authorityCertificates = try TLSContext.certificates(authority.chain)
        defer { authorityCertificates.forEach { X509_free($0) } }
        guard let caCertificate = authorityCertificates.first, let caKey = try TLSContext.privateKey(authority.key)
        else { throw TLSError("the certificate authority's certificate and key") }
        defer { EVP_PKEY_free(caKey) }
        let alternatives = names.map { name in
            IPAddress(name) != nil ? "IP:\(name)" : "DNS:\(name)"
        }
        let certificate = try build(
            subject: names.first ?? "localhost", key: key, issuer: (caCertificate, caKey), days: days,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (
                    NID_key_usage,
                    keyType.hasPrefix("RSA") ? "critical,digitalSignature,keyEncipherment" : "critical,digitalSignature"
                ),
                (NID_ext_key_usage, "serverAuth"), (NID_subject_alt_name, alternatives.joined(separator: ",")),
                (NID_authority_key_identifier, "keyid"),
            ])
        defer { X509_free(certificate) }
        return CertificatePEM(chain: try pemCertificate(certificate) + authority.chain, key: try pemKey(key))
    }

    private static func build(
        subject: String, key: OpaquePointer, issuer: (certificate: OpaquePointer, key: OpaquePointer)?, days: Int,
        extensions: [(Int32, String)]
    ) throws(TLSError) -> OpaquePointer {
        guard let certificate = X509_new() else { throw TLSError("X509_new") }
        // Freed on every way out but the one that returns it (a name with a comma made an extension fail,
        // and the certificate leaked: found by the control API's fuzzer).
        var built = false
        defer { if !built { X509_free(certificate) } }
        var serial = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&serial, Int32(serial.count)) == 1 else { throw TLSError("RAND_bytes") }
        serial[0] &= 0x7F  // a positive serial number
        let number = BN_bin2bn(serial, Int32(serial.count), nil)
        defer { BN_free(number) }
        guard X509_set_version(certificate, 2) == 1,
            BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate)) != nil,
            X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) != nil,
            X509_gmtime_adj(X509_getm_notAfter(certificate), days * 86_400) != nil,
            X509_set_pubkey(certificate, key) == 1
        else { throw TLSError("the certificate's fields") }
        let name = X509_get_subject_name(certificate)
        guard X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, "localnlb", -1, -1, 0) == 1,
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, subject, -1, -1, 0) == 1
        else { throw TLSError("the certificate's subject \(subject)") }
        X509_set_issuer_name(certificate, issuer.map { X509_get_subject_name($0.certificate) } ?? name)
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.certificate ?? certificate, certificate, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw TLSError("the certificate extension \(value)")
            }
            defer { X509_EXTENSION_free(ext) }
            X509_add_ext(certificate, ext, -1)
        }
        guard X509_sign(certificate, issuer?.key ?? key, EVP_sha256()) > 0 else { throw TLSError("X509_sign") }
        built = true
        return certificate
    }

    static func pemCertificate(_ certificate: OpaquePointer) throws(TLSError) -> String {
        try written { PEM_write_bio_X509($0, certificate) }
    }

    /// A private key as PKCS #8 PEM.
    static func pemKey(_ key: OpaquePointer) throws(TLSError) -> String {
        try written { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
    }

    private static func written(_ write: (OpaquePointer) -> Int32) throws(TLSError) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw TLSError("BIO_new") }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw TLSError("PEM_write") }
        var data: UnsafeMutablePointer<CChar>?
        let count = clnb_bio_pending_data(bio, &data)
        guard let data, count > 0 else { throw TLSError("PEM_write") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: count), as: UTF8.self)
    }
}
