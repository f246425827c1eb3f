package web

// deTokenExchange is German for token exchange (RFC 8693) on the
// console's app page, and for the fixed messages of its rules
// (account/tokenexchange.go).
var deTokenExchange = map[string]string{
	"Token exchange audiences (comma separated app IDs or resource URIs; empty: none)": "Token-Exchange-Zielgruppen (durch Kommas getrennte App-IDs oder Ressourcen-URIs; leer: keine)",
	"A public client cannot use token exchange: it has no secret.":                     "Ein öffentlicher Client kann Token Exchange nicht nutzen: Er hat kein Secret.",
}
