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

/// A non-blocking TLS client session on a connected socket, for the control plane's HTTPS health
/// checks: each step does what it can and says whether to wait for the socket.
package final class TLSSession {
    package enum Step: Equatable {
        case done(Int)
        case wouldBlock
        case closed
        case failed(String)
    }

    let ssl: OpaquePointer

    package init?(context: TLSClientContext, fd: Int32) {
        guard let ssl = SSL_new(context.context) else { return nil }
        self.ssl = ssl
        SSL_set_fd(ssl, fd)
        SSL_set_connect_state(ssl)
    }

    deinit { SSL_free(ssl) }

    private func step(_ result: Int32, _ what: String) -> Step {
        if result > 0 { return .done(Int(result)) }
        let error = SSL_get_error(ssl, result)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return .wouldBlock }
        if error == SSL_ERROR_ZERO_RETURN || (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
            ERR_clear_error()
            return .closed
        }
        return .failed(TLSError(what).description)
    }

    package func handshake() -> Step { step(SSL_do_handshake(ssl), "TLS handshake") }

    package func write(_ bytes: ArraySlice<UInt8>) -> Step {
        bytes.withUnsafeBytes { step(SSL_write(ssl, $0.baseAddress, Int32($0.count)), "TLS write") }
    }

    package func read(into buffer: UnsafeMutableRawBufferPointer) -> Step {
        step(SSL_read(ssl, buffer.baseAddress, Int32(buffer.count)), "TLS read")
    }
}
