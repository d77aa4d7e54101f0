// Package pki is the cluster's certificate authority and join-token
// machinery: it creates the cluster CA at the first bootstrap, issues each
// node the certificate it uses for mutual TLS on the peer port (raft and the
// internal API), builds the tls.Configs that check those certificates, and
// issues and verifies the single-use join tokens that let a new node obtain
// its certificate.
//
// # Keys and certificates
//
// Every key is ECDSA P-256 and every signature ECDSA with SHA-256. RFC 8446
// §9.1 makes ecdsa_secp256r1_sha256 mandatory for TLS 1.3, so every TLS stack
// an operator may point at a node (openssl s_client, curl, Perl's
// IO::Socket::SSL, browsers) accepts these certificates; Ed25519 certificates
// are still refused by browsers and by some older OpenSSL builds, which would
// make debugging harder for no gain on a handful of long-lived connections.
//
// The CA is self-signed, valid for [CAValidity], and names the cluster in its
// subject. A node certificate has the node name as its common name and as a
// DNS SAN, the node's addresses as IP SANs, and both the server and the client
// extended key usage, because every node both serves and dials. A node
// certificate never outlives its CA. Certificates are backdated by a few
// minutes so that a node whose clock lags slightly can use a fresh one.
//
// Node names are DNS labels (see [ValidateNodeName]) and are compared without
// regard to case, like host names.
//
// Private keys are written only by [CA.Save] and [NodeCert.Save], mode 0600,
// through a temporary file that is synced and renamed; loading refuses a key
// file that group or others can access. No error, String or fmt output of
// this package contains key material or a token secret.
//
// # Joining
//
//  1. A member runs `pvehci cluster token NAME`: [Issue] (or [CA.IssueToken])
//     returns the token to print and a [TokenRecord] to replicate. The record
//     holds a hash of the token's secret, never the secret.
//  2. The new node runs `pvehci cluster join TOKEN`: [Decode] gives it the
//     member addresses and the CA fingerprint; [JoinToken.ClientTLSConfig]
//     trusts a member only if it presents a chain whose CA has that
//     fingerprint (trust on first use, pinned by the token). It creates its
//     key with [NewNodeKey] and a CSR with [NodeKey.CSR]; the key never
//     leaves the node.
//  3. The member checks the token with [Verify], signs the CSR with
//     [CA.SignCSR], marks the record used through raft (a compare-and-set, so
//     two racing joins cannot both win) and only then returns the
//     certificate and the CA certificate.
//  4. The new node checks both with [NodeKey.Assemble] and saves the result.
//
// Every refusal of a token is its own error type ([TokenMalformedError],
// [TokenUnknownError], [TokenSecretError], [TokenWrongCAError],
// [TokenWrongNameError], [TokenUsedError], [TokenExpiredError]), all of which
// match [ErrTokenRefused] with errors.Is, and each message says what went
// wrong and what to do.
package pki
