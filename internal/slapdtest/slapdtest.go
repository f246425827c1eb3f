// Package slapdtest starts a real OpenLDAP slapd for tests: a fresh
// configuration and database in a temp dir, fixtures loaded with slapadd,
// the server on a free loopback port, stopped when the test ends.
//
// When slapd is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package slapdtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	goldap "github.com/go-ldap/ldap/v3"
	"github.com/keyport/keyport/internal/daemontest"
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
	proc      *daemontest.Process
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
	return daemontest.Binary(t, "slapd ldap-utils", "LDAP tests", name, "/usr/sbin/"+name, "/usr/local/sbin/"+name)
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
		ca, cert, key := daemontest.WriteTestPKI(t, dir)
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
		s.Addr = daemontest.FreeAddr(t)
		s.URL = "ldap://" + s.Addr
		if s.CAFile != "" {
			s.ldapsAddr = daemontest.FreeAddr(t)
			s.LDAPSURL = "ldaps://" + s.ldapsAddr
		}
	}
	urls := s.URL + "/"
	if s.LDAPSURL != "" {
		urls += " " + s.LDAPSURL + "/"
	}
	args := append(append([]string{}, s.args...), "-h", urls)
	cmd := exec.Command(slapd, args...)
	logf, err := os.Create(filepath.Join(s.dir, "slapd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own copy
	cmd.Stdout, cmd.Stderr = logf, logf
	s.proc = daemontest.Start(t, cmd, s.Addr, func() string {
		log, _ := os.ReadFile(filepath.Join(s.dir, "slapd.log"))
		return string(log)
	})
}

// Stop ends slapd at once; a stopped server refuses connections.
func (s *Server) Stop() {
	s.proc.Kill()
	s.proc = nil
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
