package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// bearerToken is the token source of a BearerTokenFile (see HTTPOptions),
// nil without one (see HTTPOptions.BearerTokenFile for when it reads the
// file). The file must hold a token now.
func bearerToken(file string) (transport.ResettableTokenSource, error) {
	if file == "" {
		return nil, nil
	}
	ts := transport.NewCachedFileTokenSource(file)
	if _, err := ts.Token(); err != nil {
		return nil, fmt.Errorf("--metering-http-bearer-token-file: %w", err)
	}
	return ts, nil
}

// newTLSConfig is the TLS configuration of o's CAFile and client
// certificate, and a function that stops watching the certificate (a no-op
// without one).
func newTLSConfig(o HTTPOptions) (*tls.Config, func(), error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--metering-http-ca-file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("--metering-http-ca-file %s holds no PEM certificate", o.CAFile)
		}
		config.RootCAs = pool
	}
	if (o.ClientCertFile == "") != (o.ClientKeyFile == "") {
		return nil, nil, fmt.Errorf("--metering-http-client-cert-file and --metering-http-client-key-file must be set together")
	}
	if o.ClientCertFile == "" {
		return config, func() {}, nil
	}
	cw, err := certwatcher.New(o.ClientCertFile, o.ClientKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--metering-http-client-cert-file and --metering-http-client-key-file: %w", err)
	}
	config.GetClientCertificate = clientCertificate(cw, o)
	return config, startCertWatcher(cw, o.Log), nil
}

// clientCertificate serves cw's client certificate, re-reading its files
// first, so that a rotated pair is used from the next handshake on; a pair
// that does not load (such as during a rotation that has written one file
// only) keeps the previous one in use.
func clientCertificate(cw *certwatcher.CertWatcher, o HTTPOptions) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if err := cw.ReadCertificate(); err != nil {
			o.Log.Error(err, "Reloading the metering client certificate failed; using the one loaded before",
				"certFile", o.ClientCertFile, "keyFile", o.ClientKeyFile)
		}
		return cw.GetCertificate(nil)
	}
}

// startCertWatcher runs cw, which re-reads the certificate when its files
// change (and every 10 seconds) and frees its file watch once stopped, until
// the returned function is called; that function waits for it to stop.
func startCertWatcher(cw *certwatcher.CertWatcher, log logr.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cw.Start(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Watching the metering client certificate failed; it is still re-read at every TLS handshake")
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
