package smtp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// testServer is a real SMTP server (go-smtp) on a loopback TCP port that records every message
// it accepts in a ledger.
type testServer struct {
	Addr   string
	Port   int
	CAFile string // PEM of the self-signed certificate, for Config.CAFile

	mu       sync.Mutex
	conns    int // distinct connections that said EHLO
	seen     map[*gosmtp.Conn]bool
	resets   int
	noops    int
	accepted []received
	dataSeen int
	live     []*gosmtp.Conn

	user, pass string // accepted credentials; empty = AUTH not required
	failEvery  int    // every n-th DATA gets 451
	block      chan struct{}
	gotData    chan struct{} // signalled when a blocked DATA has read the whole message
}

type received struct {
	From, To, User string
	TLS            bool
	Data           string
}

type serverOpts struct {
	implicitTLS bool
	noTLS       bool
	user, pass  string
	failEvery   int
}

func startServer(t testing.TB, o serverOpts) *testServer {
	t.Helper()
	ts := &testServer{user: o.user, pass: o.pass, failEvery: o.failEvery, seen: map[*gosmtp.Conn]bool{}}
	cert, caFile := selfSigned(t)
	ts.CAFile = caFile
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(c *gosmtp.Conn) (gosmtp.Session, error) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if !ts.seen[c] { // STARTTLS starts a second session on the same connection
			ts.seen[c] = true
			ts.conns++
			ts.live = append(ts.live, c)
		}
		_, isTLS := c.TLSConnectionState()
		return &session{ts: ts, tls: isTLS}, nil
	}))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = o.noTLS
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if !o.noTLS {
		srv.TLSConfig = tlsCfg
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if o.implicitTLS {
		ln = tls.NewListener(ln, tlsCfg)
	}
	ts.Addr = ln.Addr().String()
	ts.Port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() {
		ts.unblock()
		srv.Close()
	})
	return ts
}

// blockData makes DATA hang after the whole message was read, until unblock.
func (ts *testServer) blockData() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.block = make(chan struct{})
	ts.gotData = make(chan struct{}, 16)
}

func (ts *testServer) unblock() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.block != nil {
		close(ts.block)
		ts.block = nil
	}
}

// killConnections closes every connection from the server side.
func (ts *testServer) killConnections() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, c := range ts.live {
		c.Conn().Close()
	}
	ts.live = nil
}

func (ts *testServer) snapshot() (conns, resets, noops int, msgs []received) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.conns, ts.resets, ts.noops, append([]received(nil), ts.accepted...)
}

type session struct {
	ts       *testServer
	tls      bool
	user     string
	from, to string
}

func (s *session) AuthMechanisms() []string {
	if s.ts.user == "" {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.ts.mu.Lock()
		defer s.ts.mu.Unlock()
		if user != s.ts.user || pass != s.ts.pass {
			return gosmtp.ErrAuthFailed
		}
		s.user = user
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, gosmtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.ts.user != "" && s.user == "" {
		return gosmtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if strings.HasPrefix(to, "unknown@") {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "<" + to + ">: mailbox unavailable"}
	}
	s.to = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ts.mu.Lock()
	s.ts.dataSeen++
	n, block, got := s.ts.dataSeen, s.ts.block, s.ts.gotData
	s.ts.mu.Unlock()
	if block != nil {
		got <- struct{}{}
		<-block
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 0, 0}, Message: "too late"}
	}
	if s.ts.failEvery > 0 && n%s.ts.failEvery == 0 {
		return &gosmtp.SMTPError{Code: 451, EnhancedCode: gosmtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	s.ts.accepted = append(s.ts.accepted, received{From: s.from, To: s.to, User: s.user, TLS: s.tls, Data: string(b)})
	return nil
}

func (s *session) Reset() {
	s.from, s.to = "", ""
	s.ts.mu.Lock()
	s.ts.resets++
	s.ts.mu.Unlock()
}

func (s *session) Logout() error { return nil }

// loginServer is the server side of AUTH LOGIN (go-sasl ships only the client).
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) (challenge []byte, done bool, err error) {
	l.step++
	switch l.step {
	case 1:
		if resp != nil { // initial response carries the user name
			l.user, l.step = string(resp), 2
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 2:
		l.user = string(resp)
		return []byte("Password:"), false, nil
	default:
		return nil, true, l.check(l.user, string(resp))
	}
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and writes it as a CA file.
func selfSigned(t testing.TB) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "notifier test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caFile
}
