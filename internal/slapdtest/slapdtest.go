// Package slapdtest starts a real OpenLDAP slapd for tests: a fresh
// configuration and database in a temp dir, fixtures loaded with slapadd,
// the server on a free loopback port, stopped when the test ends.
//
// When slapd is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package slapdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"
)

// Suffix, AdminDN and AdminPassword describe the directory every server
// starts with.
const (
	Suffix        = "dc=example,dc=org"
	AdminDN       = "cn=admin," + Suffix
	AdminPassword = "admin-secret"
)

// Server is a running slapd.
type Server struct {
	URL  string // ldap://127.0.0.1:PORT
	Addr string
	// With TLS (StartWithTLS): ldaps:// on a second port, StartTLS on URL,
	// and the PEM file of the test CA that signed the server's certificate.
	LDAPSURL  string
	CAFile    string
	ldapsAddr string
	dir       string
	cmd       *exec.Cmd
	args      []string
}

// StartWithTLS is Start with TLS: a fresh test CA signs a certificate for
// 127.0.0.1 and localhost; the server speaks StartTLS on URL and LDAPS on
// LDAPSURL.
func StartWithTLS(t testing.TB, ldif string) *Server {
	t.Helper()
	return start(t, ldif, true)
}

func binary(t testing.TB, name string) string {
	t.Helper()
	for _, p := range []string{name, "/usr/sbin/" + name, "/usr/local/sbin/" + name} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s is not installed (apt-get install slapd ldap-utils); KEYPORT_REQUIRE_INTEGRATION=1 requires the LDAP tests", name)
	}
	t.Skipf("%s is not installed (apt-get install slapd ldap-utils): skipping the LDAP tests", name)
	return ""
}

// Start runs slapd with the base entries plus ldif (entries under Suffix).
func Start(t testing.TB, ldif string) *Server {
	t.Helper()
	return start(t, ldif, false)
}

func start(t testing.TB, ldif string, withTLS bool) *Server {
	t.Helper()
	slapd, slapadd := binary(t, "slapd"), binary(t, "slapadd")
	dir := t.TempDir()
	confDir, dbDir := filepath.Join(dir, "slapd.d"), filepath.Join(dir, "db")
	for _, d := range []string{confDir, dbDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	configText := fmt.Sprintf(configLDIF, dir, dbDir)
	s := &Server{dir: dir}
	if withTLS {
		ca, cert, key := writeTestPKI(t, dir)
		s.CAFile = ca
		configText = strings.Replace(configText, "olcPidFile: "+dir+"/slapd.pid\n",
			"olcPidFile: "+dir+"/slapd.pid\nolcTLSCACertificateFile: "+ca+"\nolcTLSCertificateFile: "+cert+"\nolcTLSCertificateKeyFile: "+key+"\n", 1)
	}
	config := write("config.ldif", configText)
	data := write("data.ldif", baseLDIF+"\n"+strings.TrimSpace(ldif)+"\n")
	run := func(args ...string) {
		if out, err := exec.Command(slapadd, args...).CombinedOutput(); err != nil {
			t.Fatalf("slapadd %v: %v\n%s", args, err, out)
		}
	}
	run("-n", "0", "-F", confDir, "-l", config)
	run("-n", "1", "-F", confDir, "-l", data)

	s.args = []string{"-d", "0", "-F", confDir}
	s.start(t, slapd)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(t testing.TB, slapd string) {
	t.Helper()
	if s.Addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.Addr = ln.Addr().String()
		ln.Close()
		s.URL = "ldap://" + s.Addr
		if s.CAFile != "" {
			ln2, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s.ldapsAddr = ln2.Addr().String()
			ln2.Close()
			s.LDAPSURL = "ldaps://" + s.ldapsAddr
		}
	}
	urls := s.URL + "/"
	if s.LDAPSURL != "" {
		urls += " " + s.LDAPSURL + "/"
	}
	args := append(append([]string{}, s.args...), "-h", urls)
	s.cmd = exec.Command(slapd, args...)
	logf, err := os.Create(filepath.Join(s.dir, "slapd.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	for i := 0; i < 200; i++ {
		if c, err := net.DialTimeout("tcp", s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
	t.Fatalf("slapd did not start on %s:\n%s", s.Addr, log)
}

// Stop ends slapd; a stopped server refuses connections.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Restart starts a stopped server again on the same address and data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t, binary(t, "slapd"))
}

const configLDIF = `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %[1]s/slapd.pid

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file:///etc/ldap/schema/nis.ldif

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: dc=example,dc=org
olcRootDN: cn=admin,dc=example,dc=org
olcRootPW: admin-secret
olcDbDirectory: %[2]s
olcDbMaxSize: 33554432
olcAccess: {0}to attrs=userPassword by anonymous auth by self write by * none
olcAccess: {1}to * by users read by * none
`

const baseLDIF = `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: ou=people,dc=example,dc=org
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=org
objectClass: organizationalUnit
ou: groups
`

// Delete removes an entry, as the directory's administrator.
func (s *Server) Delete(t testing.TB, dn string) {
	t.Helper()
	c, err := goldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		t.Fatal(err)
	}
	if err := c.Del(goldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("delete %s: %v", dn, err)
	}
}
