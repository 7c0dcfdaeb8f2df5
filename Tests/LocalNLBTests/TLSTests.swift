import Foundation
import Testing

@testable import LocalNLBControl
@testable import LocalNLBDataPlane
@testable import LocalNLBModel

/// The TLS pieces without a socket: certificates the local authority issues, what ACM reads from
/// them, and what it refuses to import.
@Suite struct TLSCertificates {
    let authority = try! LocalCertificates.makeAuthority(commonName: "test CA")

    @Test func issuedCertificatesCarryTheirNamesAndVerify() throws {
        let issued = try LocalCertificates.issue(names: ["lb.test", "127.0.0.1"], by: authority)
        let info = try CertificateInfo.validated(issued)
        #expect(info.domainName == "lb.test" && info.alternativeNames == ["lb.test", "127.0.0.1"])
        #expect(info.keyAlgorithm == "EC_prime256v1" && info.issuer.contains("CN=test CA"))
        #expect(info.notAfter - info.notBefore > 394 * 86_400)
        // The chain is the leaf, then the authority: a TLS context takes it under every policy.
        for policy in SSLPolicy.all {
            _ = try TLSContext(certificate: issued, policy: policy, alpnPolicy: "HTTP2Preferred")
        }
        let rsa = try LocalCertificates.issue(names: ["rsa.test"], keyType: "RSA_2048", by: authority)
        #expect(try CertificateInfo.validated(rsa).keyAlgorithm == "RSA_2048")
        #expect(throws: TLSError.self) { try LocalCertificates.issue(names: ["x"], keyType: "DSA_1024", by: authority) }
    }

    @Test func importRefusesWhatACMRefuses() throws {
        let issued = try LocalCertificates.issue(names: ["a.test"], by: authority)
        let other = try LocalCertificates.issue(names: ["b.test"], by: authority)
        func problem(_ pem: CertificatePEM) -> String? {
            do {
                _ = try CertificateInfo.validated(pem)
                return nil
            } catch { return error.description }
        }
        #expect(
            problem(CertificatePEM(chain: issued.chain, key: other.key))
                == "the PrivateKey does not match the Certificate")
        #expect(
            problem(CertificatePEM(chain: "not a certificate", key: issued.key))
                == "the Certificate holds no PEM certificate")
        #expect(problem(CertificatePEM(chain: issued.chain, key: "")) == "the PrivateKey holds no PEM key")
        let expired = try LocalCertificates.issue(names: ["old.test"], days: -1, by: authority)
        #expect(problem(expired) == "the Certificate has expired")
        // A listener refuses it too, naming why.
        #expect(throws: TLSError.self) {
            try TLSContext(certificate: expired, policy: SSLPolicy.all[0], alpnPolicy: "None")
        }
    }

    /// The authority is made once, kept with its key at 0600, and read back.
    @Test func theAuthorityIsKept() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("localnlb-ca-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try CertificateStore(directory: directory).loadAuthority()
        let again = try CertificateStore(directory: directory).loadAuthority()
        #expect(first == again)
        let mode =
            try FileManager.default.attributesOfItem(atPath: directory + "/ca-key.pem")[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}

/// AWS's pairing: a TLS target group is behind a TLS listener only; a TCP listener is refused for it.
@Suite struct TLSTargetGroups {
    @Test func onlyATLSListenerForwardsToATLSGroup() {
        let json = """
            { "LoadBalancer": { "Name": "t", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
              "Listeners": [ { "Port": 443, "Protocol": "TCP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "tls" } ] } ],
              "TargetGroups": [ { "Name": "tls", "Protocol": "TLS", "Port": 443, "TargetType": "ip" } ] }
            """
        #expect(
            problems(json).first?.contains("a TCP listener forwards to a TCP or TCP_UDP target group; tls is TLS")
                == true)
        let tls = json.replacingOccurrences(
            of: #""Protocol": "TCP","#,
            with:
                #""Protocol": "TLS", "Certificates": [ { "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x" } ],"#
        )
        #expect(problems(tls).isEmpty)
    }
}

/// A policy AWS has that this machine's OpenSSL cannot enforce is refused with that reason.
@Suite struct UnservedPolicies {
    @Test func postQuantumPoliciesSayWhy() {
        let json = """
            { "LoadBalancer": { "Name": "t", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
              "Listeners": [ { "Port": 443, "Protocol": "TLS", "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
                "Certificates": [ { "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x" } ],
                "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
              "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip" } ] }
            """
        #expect(problems(json).first?.contains("post-quantum hybrid policy (ML-KEM key exchange") == true)
        #expect(problems(json).first?.contains("OpenSSL 3.5 can") == true)
        let fips = json.replacingOccurrences(of: "TLS13-1-2-Res-PQ-2025-09", with: "TLS13-1-2-FIPS-2023-04")
        #expect(problems(fips).first?.contains("the system's OpenSSL here has no FIPS provider") == true)
        let des = json.replacingOccurrences(of: "TLS13-1-2-Res-PQ-2025-09", with: "TLS-1-0-2015-04")
        #expect(
            problems(des).first?.contains("DES-CBC3-SHA cipher, which the system's OpenSSL is built without") == true)
        let ext1 = json.replacingOccurrences(of: "TLS13-1-2-Res-PQ-2025-09", with: "TLS13-1-2-Ext1-2021-06")
        #expect(problems(ext1).isEmpty)
    }
}

/// Mutual TLS in the file: verify mode against a trust store the file declares; what NLB has not
/// (passthrough) and what cannot be read (a key that is not a path) are named.
@Suite struct MutualTLSConfiguration {
    func document(mutual: String, key: String = "/etc/ssl/clients.pem") -> String {
        """
        { "TrustStores": [ { "Name": "clients", "CaCertificatesBundleS3Bucket": "local", "CaCertificatesBundleS3Key": "\(key)" } ],
          "LoadBalancer": { "Name": "t", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
          "Listeners": [ { "Port": 443, "Protocol": "TLS", "MutualAuthentication": \(mutual),
            "Certificates": [ { "CertificateArn": "arn:aws:acm:us-east-1:1:certificate/x" } ],
            "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
          "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip" } ] }
        """
    }

    @Test func verifyModeNamesItsTrustStore() throws {
        let loaded = try load(
            document(
                mutual: #"{ "Mode": "verify", "TrustStoreArn": "clients", "IgnoreClientCertificateExpiry": true }"#))
        let mutual = try #require(loaded.configuration.listeners[0].mutualAuthentication)
        #expect(mutual.trustStoreName == "clients" && mutual.ignoreClientCertificateExpiry)
        #expect(
            try load(document(mutual: #"{ "Mode": "off" }"#)).configuration.listeners[0].mutualAuthentication == nil)
        #expect(
            problems(document(mutual: #"{ "Mode": "passthrough", "TrustStoreArn": "clients" }"#)) == [
                #"Listeners[0].MutualAuthentication.Mode: "passthrough" is for Application Load Balancers; a Network Load Balancer verifies"#
            ])
        #expect(
            problems(document(mutual: #"{ "Mode": "verify" }"#)) == [
                "Listeners[0].MutualAuthentication.TrustStoreArn: missing: verify mode needs a trust store"
            ])
        #expect(
            problems(document(mutual: #"{ "Mode": "verify", "TrustStoreArn": "nope" }"#)).first?.contains(
                "is not a trust store here") == true)
        #expect(
            problems(document(mutual: #"{ "Mode": "off" }"#, key: "rootCA.pem")).first?.contains(
                "localnlb has no S3 and reads the key as a path on this machine") == true)
    }

    @Test func revocationListsAreKeptWithTheirIds() throws {
        func store(_ contents: String) -> String {
            document(mutual: #"{ "Mode": "off" }"#).replacingOccurrences(
                of: #""CaCertificatesBundleS3Key": "/etc/ssl/clients.pem""#,
                with: #""CaCertificatesBundleS3Key": "/etc/ssl/clients.pem", "RevocationContents": "# + contents)
        }
        let loaded = try load(
            store(
                #"[ { "S3Bucket": "b", "S3Key": "/etc/ssl/a.crl", "RevocationId": 4 }, { "S3Key": "/etc/ssl/b.crl" } ]"#
            ))
        let revocations = loaded.configuration.trustStores[0].revocations
        #expect(revocations.map(\.id) == [4, 5] && revocations.map(\.key) == ["/etc/ssl/a.crl", "/etc/ssl/b.crl"])
        // What --persist writes reads back the same, ids and all.
        let written = loaded.configuration.document.rendered
        #expect(try load(written).configuration.trustStores[0].revocations == revocations)
        #expect(
            problems(store(#"[ { "S3Key": "/a.crl", "RevocationType": "OCSP" } ]"#)) == [
                #"TrustStores[0].RevocationContents[0].RevocationType: "OCSP": CRL is the one revocation type"#
            ])
        #expect(
            problems(store(#"[ { "S3Key": "a.crl" } ]"#)).first?.contains(
                "reads the key as a path on this machine; give an absolute path to a PEM CRL") == true)
        #expect(
            problems(store(#"[ { "S3Key": "/a", "RevocationId": 1 }, { "S3Key": "/b", "RevocationId": 1 } ]"#)) == [
                "TrustStores[0].RevocationContents[1].RevocationId: 1 is given twice"
            ])
    }

    @Test func identityFiltersMatchAsAWSDoes() throws {
        typealias Filter = MutualAuthentication.IdentityFilter
        #expect(Filter(field: "subject-cn", prefix: false, value: "Client.Test").matches("client.test"))
        #expect(Filter(field: "san-dns", prefix: true, value: "API.").matches("api.example.com"))
        #expect(!Filter(field: "san-dns", prefix: false, value: "api").matches("api.example.com"))
        // A URI: scheme and host without case, the rest with it.
        #expect(
            Filter(field: "san-uri", prefix: false, value: "SPIFFE://Example.org/Web").matches(
                "spiffe://example.org/Web"))
        #expect(
            !Filter(field: "san-uri", prefix: false, value: "spiffe://example.org/web").matches(
                "spiffe://example.org/Web"))
        let filters = #"{ "Mode": "verify", "TrustStoreArn": "clients", "ClientCertificateIdentityFilters": [ "#
        let loaded = try load(
            document(
                mutual: filters
                    + #"{ "Action": "accept", "Field": "san-uri", "MatchType": "prefix", "Value": "spiffe://" } ] }"#))
        #expect(loaded.configuration.listeners[0].mutualAuthentication?.identityFilters.map(\.field) == ["san-uri"])
        #expect(
            problems(
                document(
                    mutual: filters
                        + #"{ "Action": "deny", "Field": "subject-o", "MatchType": "regex", "Value": "" } ] }"#))
                == [
                    #"Listeners[0].MutualAuthentication.ClientCertificateIdentityFilters[0].Action: "deny": accept is the one action"#,
                    "Listeners[0].MutualAuthentication.ClientCertificateIdentityFilters[0].Field: one of subject-cn, subject-ou, san-dns, san-uri",
                ])
    }
}
