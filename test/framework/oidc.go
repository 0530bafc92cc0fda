package framework

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// WithAPIServerFlag sets a kube-apiserver flag of the control plane Start
// starts, for example the --oidc-* flags.
func WithAPIServerFlag(name string, values ...string) func(*envtest.Environment) {
	return func(env *envtest.Environment) {
		env.ControlPlane.GetAPIServer().Configure().Set(name, values...)
	}
}

// WithoutCRDs starts the control plane without the operator's CRD, for a
// test that installs it itself (helm install does).
func WithoutCRDs() func(*envtest.Environment) {
	return func(env *envtest.Environment) {
		env.CRDDirectoryPaths = nil
		env.ErrorIfCRDPathMissing = false
	}
}

// signingAlgorithm is the JWS algorithm of the ID tokens.
const signingAlgorithm = "RS256"

// OIDCIssuer is an OpenID Connect identity provider for tests: it serves
// the discovery document and signing keys over HTTPS on loopback, with a
// certificate from a CA of its own, and signs ID tokens (RS256).
type OIDCIssuer struct {
	// URL is the issuer URL: the "iss" of its tokens and the base of
	// /.well-known/openid-configuration.
	URL string
	// CAFile is the PEM file of the CA the server's certificate chains to
	// (kube-apiserver's --oidc-ca-file).
	CAFile string

	server *httptest.Server
	key    *rsa.PrivateKey
	keyID  string
}

// StartOIDCIssuer starts an issuer whose URL ends in path (such as
// /auth/realms/meshfed, a Keycloak realm's), writing its CA into dir.
func StartOIDCIssuer(dir, path string) (*OIDCIssuer, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "meshstack-operator test OIDC CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, &serverKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "oidc-ca.crt")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		return nil, err
	}
	signingKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}

	i := &OIDCIssuer{CAFile: caFile, key: signingKey, keyID: "test-key-1"}
	mux := http.NewServeMux()
	i.server = httptest.NewUnstartedServer(mux)
	i.server.TLS = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}},
	}
	i.server.StartTLS()
	i.URL = i.server.URL + path

	mux.HandleFunc(path+"/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + "/protocol/openid-connect/certs",
			"authorization_endpoint":                i.URL + "/protocol/openid-connect/auth",
			"token_endpoint":                        i.URL + "/protocol/openid-connect/token",
			"response_types_supported":              []string{"code", "id_token"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{signingAlgorithm},
		})
	})
	mux.HandleFunc(path+"/protocol/openid-connect/certs", func(w http.ResponseWriter, _ *http.Request) {
		pub := signingKey.PublicKey
		writeJSON(w, map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": signingAlgorithm, "use": "sig", "kid": i.keyID,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	return i, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Close stops the server.
func (i *OIDCIssuer) Close() { i.server.Close() }

// IDToken signs an ID token for audience (the client id) with the
// standard claims iss, aud, iat and exp (an hour ahead) and the given ones,
// such as sub and a groups claim.
func (i *OIDCIssuer) IDToken(audience string, claims map[string]any) (string, error) {
	now := time.Now()
	payload := map[string]any{
		"iss": i.URL,
		"aud": audience,
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range claims {
		payload[k] = v
	}
	header, err := json.Marshal(map[string]string{"alg": signingAlgorithm, "typ": "JWT", "kid": i.keyID})
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, i.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing the ID token: %w", err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}
