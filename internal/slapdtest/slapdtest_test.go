package slapdtest

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

func TestStart(t *testing.T) {
	s := Start(t, `dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Liddell
userPassword: wonderland
`)
	c, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind("uid=alice,ou=people,dc=example,dc=org", "wonderland"); err != nil {
		t.Fatalf("bind as alice: %v", err)
	}
	if err := c.Bind("uid=alice,ou=people,dc=example,dc=org", "wrong"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if err := c.Bind(AdminDN, AdminPassword); err != nil {
		t.Fatal(err)
	}
	res, err := c.Search(ldap.NewSearchRequest(Suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, "(uid=alice)", []string{"entryUUID", "cn"}, nil))
	if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("entryUUID") == "" {
		t.Fatalf("search: %v %v", err, res)
	}
	s.Stop()
	if _, err := ldap.DialURL(s.URL); err == nil {
		t.Fatal("a stopped server accepts connections")
	}
	s.Restart(t)
	c2, err := ldap.DialURL(s.URL)
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	c2.Close()
}
