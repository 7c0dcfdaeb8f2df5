import CLocalNLBTLS
import Glibc
import LocalNLBModel

/// One request over TLS on a connected blocking socket, read to the end: the demo's client of a TLS
/// listener. It verifies the server's certificate against `authority` (a PEM file) for `serverName`.
package enum TLSClient {
    package static func exchange(_ request: [UInt8], on fd: Int32, authority: String, serverName: String)
        throws(TLSError) -> [UInt8]
    {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw TLSError("SSL_CTX_new") }
        defer { SSL_CTX_free(context) }
        guard SSL_CTX_load_verify_locations(context, authority, nil) == 1 else {
            throw TLSError("the certificate authority \(authority)")
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        guard let ssl = SSL_new(context) else { throw TLSError("SSL_new") }
        defer { SSL_free(ssl) }
        _ = clnb_ssl_set_server_name(ssl, serverName)
        _ = SSL_set1_host(ssl, serverName)
        SSL_set_fd(ssl, fd)
        guard SSL_connect(ssl) == 1 else { throw TLSError("the TLS handshake with \(serverName)") }
        let written = request.withUnsafeBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
        guard written == Int32(request.count) else { throw TLSError("the request") }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let read = chunk.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
            guard read > 0 else { break }
            response += chunk[0..<Int(read)]
        }
        ERR_clear_error()
        return response
    }
}
