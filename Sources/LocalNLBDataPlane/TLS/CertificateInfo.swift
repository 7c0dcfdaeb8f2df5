import CLocalNLBTLS
import Glibc
import LocalNLBModel
import ProxyProtocol

/// What ACM describes of a certificate, read from it: names, validity, key algorithm (ACM's spelling:
/// `RSA_2048`, `EC_prime256v1`), serial, subject and issuer.
package struct CertificateInfo: Sendable, Equatable {
    package var domainName: String
    package var alternativeNames: [String]
    package var notBefore: Double
    package var notAfter: Double
    package var keyAlgorithm: String
    package var serial: String
    package var subject: String
    package var issuer: String
    package var signatureAlgorithm: String

    /// ACM's key algorithms, the ones it imports and issues.
    static let curves = ["prime256v1": "EC_prime256v1", "secp384r1": "EC_secp384r1", "secp521r1": "EC_secp521r1"]

    /// Reads a chain's leaf and checks it with its key, as ACM's ImportCertificate does: a certificate,
    /// a key that matches it, a key type ACM takes, in its validity period.
    package static func validated(_ pem: CertificatePEM) throws(TLSError) -> CertificateInfo {
        let chain = try TLSContext.certificates(pem.chain)
        defer { chain.forEach { X509_free($0) } }
        guard let leaf = chain.first else { throw TLSError("the Certificate holds no PEM certificate") }
        guard let key = try TLSContext.privateKey(pem.key) else { throw TLSError("the PrivateKey holds no PEM key") }
        defer { EVP_PKEY_free(key) }
        guard X509_check_private_key(leaf, key) == 1 else {
            ERR_clear_error()
            throw TLSError("the PrivateKey does not match the Certificate")
        }
        let info = try read(leaf, key: key)
        guard info.keyAlgorithm.hasPrefix("EC_") || ["RSA_2048", "RSA_3072", "RSA_4096"].contains(info.keyAlgorithm)
        else {
            throw TLSError(
                "key algorithm \(info.keyAlgorithm): ACM takes RSA 2048, 3072 or 4096 and ECDSA P-256, P-384 or P-521")
        }
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if info.notAfter < Double(now.tv_sec) { throw TLSError("the Certificate has expired") }
        if info.notBefore > Double(now.tv_sec) { throw TLSError("the Certificate is not valid yet") }
        return info
    }

    static func read(_ certificate: OpaquePointer, key: OpaquePointer) throws(TLSError) -> CertificateInfo {
        var names = [CChar](repeating: 0, count: 8192)
        let count = clnb_x509_alt_names(certificate, &names, names.count)
        let alternatives =
            count > 0 ? Self.text(names).split(separator: ",").map(String.init) : []
        var common = [CChar](repeating: 0, count: 256)
        let length = X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, &common, 256)
        let commonName = length > 0 ? Self.text(common) : nil
        let algorithm: String
        switch EVP_PKEY_get_base_id(key) {
        case EVP_PKEY_RSA: algorithm = "RSA_\(EVP_PKEY_get_bits(key))"
        case EVP_PKEY_EC:
            var group = [CChar](repeating: 0, count: 64)
            var groupLength = 0
            EVP_PKEY_get_group_name(key, &group, group.count, &groupLength)
            let name = Self.text(group)
            algorithm = curves[name] ?? curves[name == "P-256" ? "prime256v1" : name] ?? "EC_\(name)"
        default: algorithm = "unknown"
        }
        return CertificateInfo(
            domainName: commonName ?? alternatives.first ?? "", alternativeNames: alternatives,
            notBefore: epoch(X509_get0_notBefore(certificate)), notAfter: epoch(X509_get0_notAfter(certificate)),
            keyAlgorithm: algorithm, serial: serial(certificate), subject: oneLine(X509_get_subject_name(certificate)),
            issuer: oneLine(X509_get_issuer_name(certificate)),
            signatureAlgorithm: signature(certificate))
    }

    /// What identity filters match in a client's certificate: its subject's common names and
    /// organizational units, and its subjectAltName DNS names and URIs.
    static func identity(of certificate: OpaquePointer) -> [String: [String]] {
        func entries(_ nid: Int32) -> [String] {
            let name = X509_get_subject_name(certificate)
            var found: [String] = []
            var position: Int32 = -1
            while true {
                position = X509_NAME_get_index_by_NID(name, nid, position)
                guard position >= 0, let entry = X509_NAME_get_entry(name, position),
                    let data = X509_NAME_ENTRY_get_data(entry), let bytes = ASN1_STRING_get0_data(data)
                else { break }
                found.append(
                    String(
                        decoding: UnsafeBufferPointer(start: bytes, count: Int(ASN1_STRING_length(data))), as: UTF8.self
                    ))
            }
            return found
        }
        var names = [CChar](repeating: 0, count: 8192)
        let dns =
            clnb_x509_alt_names(certificate, &names, names.count) > 0
            ? text(names).split(separator: ",").map(String.init).filter { IPAddress($0) == nil } : []
        var uris = [CChar](repeating: 0, count: 8192)
        let uri =
            clnb_x509_alt_uris(certificate, &uris, uris.count) > 0
            ? text(uris).split(separator: "\n").map(String.init) : []
        return [
            "subject-cn": entries(NID_commonName), "subject-ou": entries(NID_organizationalUnitName), "san-dns": dns,
            "san-uri": uri,
        ]
    }

    /// A C string in a buffer, up to its NUL.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func epoch(_ time: UnsafePointer<ASN1_TIME>?) -> Double {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
        return Double(timegm(&parts))
    }

    static func serial(_ certificate: OpaquePointer) -> String {
        guard let number = ASN1_INTEGER_to_BN(X509_get_serialNumber(certificate), nil) else { return "" }
        defer { BN_free(number) }
        var bytes = [UInt8](repeating: 0, count: Int((BN_num_bits(number) + 7) / 8))
        BN_bn2bin(number, &bytes)
        return bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined(separator: ":")
    }

    static func oneLine(_ name: OpaquePointer?) -> String {
        var buffer = [CChar](repeating: 0, count: 512)
        guard let name, X509_NAME_oneline(name, &buffer, Int32(buffer.count)) != nil else { return "" }
        // `/O=localnlb/CN=x` as ACM writes it: `O=localnlb,CN=x`.
        return Self.text(buffer).split(separator: "/").joined(separator: ",")
    }

    static func signature(_ certificate: OpaquePointer) -> String {
        let nid = X509_get_signature_nid(certificate)
        guard let name = OBJ_nid2sn(nid) else { return "" }
        return String(cString: name).uppercased().replacingOccurrences(of: "-", with: "")
    }
}
