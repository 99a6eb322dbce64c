package smtp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"time"

	"notifier/secret"
)

// The TLS modes.
const (
	TLSStartTLS = "starttls" // plain connect, then STARTTLS (required); default port 587
	TLSImplicit = "tls"      // TLS from the first byte (SMTPS); default port 465
	TLSNone     = "none"     // no TLS; default port 25. AUTH over it needs AllowInsecureAuth
)

// The AUTH mechanisms.
const (
	AuthPlain = "plain"
	AuthLogin = "login"
)

// Config is the YAML configuration of an smtp channel.
type Config struct {
	// Host is the server's host name (also the TLS server name unless ServerName is set).
	Host string `yaml:"host" json:"host"`
	// Port defaults by TLS mode: 587 starttls, 465 tls, 25 none.
	Port int `yaml:"port" json:"port"`
	// TLS is starttls (default), tls or none.
	TLS string `yaml:"tls" json:"tls"`
	// CAFile is a PEM bundle trusted instead of the system roots.
	CAFile string `yaml:"ca_file" json:"ca_file"`
	// ServerName overrides the name checked in the server certificate.
	ServerName string `yaml:"server_name" json:"server_name"`
	// InsecureSkipVerify disables certificate checks (never in production).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify"`
	// Username and Password enable AUTH; both or neither.
	Username string        `yaml:"username" json:"username"`
	Password secret.Secret `yaml:"password" json:"password"`
	// Auth is the mechanism: plain (default) or login.
	Auth string `yaml:"auth" json:"auth"`
	// AllowInsecureAuth permits AUTH with tls: none (a relay on localhost, tests).
	AllowInsecureAuth bool `yaml:"allow_insecure_auth" json:"allow_insecure_auth"`
	// From is the sender, "Name <addr@example.com>" or "addr@example.com"; required.
	From string `yaml:"from" json:"from"`
	// HELO is the name sent in EHLO (default "localhost").
	HELO string `yaml:"helo" json:"helo"`
	// MessageIDDomain is the right-hand side of Message-ID (default "notifier.local").
	MessageIDDomain string `yaml:"message_id_domain" json:"message_id_domain"`
	// Connections is the number of connections kept open, one per concurrency slot (default 4);
	// set it to the channel's concurrency.
	Connections int `yaml:"connections" json:"connections"`
	// IdleCheck: a connection idle longer than this is checked with NOOP before use (default 30s).
	IdleCheck time.Duration `yaml:"idle_check" json:"idle_check"`
	// Timeout bounds one Send when ctx has no deadline (default 60s).
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// Defaults.
const (
	DefaultMessageIDDomain = "notifier.local"
	DefaultConnections     = 4
	DefaultIdleCheck       = 30 * time.Second
	DefaultTimeout         = 60 * time.Second
)

// settings is a validated Config with defaults applied and the secret resolved.
type settings struct {
	addr, serverName string
	mode             string
	tls              *tls.Config
	auth             string
	username         string
	password         string
	from             *mail.Address
	helo             string
	idDomain         string
	connections      int
	idleCheck        time.Duration
	timeout          time.Duration
}

func (c *Config) validate() (*settings, error) {
	s := &settings{
		mode: strings.ToLower(c.TLS), auth: strings.ToLower(c.Auth), helo: c.HELO,
		idDomain: c.MessageIDDomain, connections: c.Connections, idleCheck: c.IdleCheck,
		timeout: c.Timeout, username: c.Username,
	}
	if c.Host == "" {
		return nil, fmt.Errorf("%w: host is required", ErrConfig)
	}
	port := c.Port
	switch s.mode {
	case "", TLSStartTLS:
		s.mode, port = TLSStartTLS, orDefault(port, 587)
	case TLSImplicit:
		port = orDefault(port, 465)
	case TLSNone:
		port = orDefault(port, 25)
	default:
		return nil, fmt.Errorf("%w: tls %q: want starttls, tls or none", ErrConfig, c.TLS)
	}
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: port %d out of range", ErrConfig, port)
	}
	s.addr = net.JoinHostPort(c.Host, strconv.Itoa(port))
	if c.From == "" {
		return nil, fmt.Errorf("%w: from is required", ErrConfig)
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return nil, fmt.Errorf("%w: from %q: %w", ErrConfig, c.From, err)
	}
	s.from = from
	switch s.auth {
	case "":
		s.auth = AuthPlain
	case AuthPlain, AuthLogin:
	default:
		return nil, fmt.Errorf("%w: auth %q: want plain or login", ErrConfig, c.Auth)
	}
	if (c.Username == "") != c.Password.IsZero() {
		return nil, fmt.Errorf("%w: username and password go together", ErrConfig)
	}
	if c.Username != "" {
		if s.mode == TLSNone && !c.AllowInsecureAuth {
			return nil, fmt.Errorf("%w: AUTH over tls: none sends the password in clear; set allow_insecure_auth", ErrConfig)
		}
		if s.password, err = c.Password.Resolve(); err != nil {
			return nil, fmt.Errorf("%w: password: %w", ErrConfig, err)
		}
	}
	if s.mode != TLSNone {
		s.serverName = c.ServerName
		if s.serverName == "" {
			s.serverName = c.Host
		}
		s.tls = &tls.Config{ServerName: s.serverName, InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%w: ca_file: %w", ErrConfig, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%w: ca_file %s: no PEM certificate", ErrConfig, c.CAFile)
			}
			s.tls.RootCAs = pool
		}
	}
	if s.helo == "" {
		s.helo = "localhost"
	}
	if strings.ContainsAny(s.helo, " \r\n") {
		return nil, fmt.Errorf("%w: helo %q", ErrConfig, s.helo)
	}
	if s.idDomain == "" {
		s.idDomain = DefaultMessageIDDomain
	}
	if strings.ContainsAny(s.idDomain, " <>@\r\n") {
		return nil, fmt.Errorf("%w: message_id_domain %q", ErrConfig, s.idDomain)
	}
	if s.connections < 0 || s.idleCheck < 0 || s.timeout < 0 {
		return nil, fmt.Errorf("%w: connections, idle_check and timeout must not be negative", ErrConfig)
	}
	s.connections = orDefault(s.connections, DefaultConnections)
	if s.idleCheck == 0 {
		s.idleCheck = DefaultIdleCheck
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	return s, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
