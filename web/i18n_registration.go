package web

// deRegistration is German for dynamic client registration: the account
// rules' refusals of registrations and initial access tokens.
var deRegistration = map[string]string{
	"The client changed while its sector_identifier_uri was checked; try again.":                                                  "Der Client wurde geändert, während seine sector_identifier_uri geprüft wurde; bitte erneut versuchen.",
	"The initial access token is missing, unknown, expired or used up.":                                                           "Der Initial Access Token fehlt, ist unbekannt, abgelaufen oder aufgebraucht.",
	"The registration access token is missing or not valid for this client.":                                                      "Der Registration Access Token fehlt oder gilt nicht für diesen Client.",
	"The name must be 1 to 64 characters, without control characters.":                                                            "Der Name muss 1 bis 64 Zeichen lang sein, ohne Steuerzeichen.",
	"The token must expire after between a minute and a year.":                                                                    "Der Token muss nach einer Minute bis einem Jahr ablaufen.",
	"The number of uses must be between 0 (no bound) and 100000.":                                                                 "Die Zahl der Verwendungen muss zwischen 0 (unbegrenzt) und 100000 liegen.",
	"No such initial access token.":                                                                                               "Diesen Initial Access Token gibt es nicht.",
	"Only the response type code is supported.":                                                                                   "Nur der Response-Typ code wird unterstützt.",
	"The response type code needs the authorization_code grant type (RFC 7591 §2.1).":                                             "Der Response-Typ code braucht den Grant-Typ authorization_code (RFC 7591 §2.1).",
	"The management API's scopes are granted by an administrator only.":                                                           "Die Scopes der Verwaltungs-API vergibt nur ein Administrator.",
	"client_secret is not the client's secret.":                                                                                   "client_secret ist nicht das Secret des Clients.",
	"A client cannot switch between public and confidential; register a new one.":                                                 "Ein Client kann nicht zwischen öffentlich und vertraulich wechseln; registrieren Sie einen neuen.",
	"The client was not issued a secret this method can use; register a new one.":                                                 "Der Client hat kein Secret erhalten, das diese Methode verwenden kann; registrieren Sie einen neuen.",
	"The app is approved: people can sign in to it now.":                                                                          "Die App ist freigegeben: Man kann sich jetzt bei ihr anmelden.",
	"This app registered itself and waits for your approval: nobody can sign in to it and it gets no token until you approve it.": "Diese App hat sich selbst registriert und wartet auf Ihre Freigabe: Bis Sie sie freigeben, kann sich niemand bei ihr anmelden und sie erhält keine Tokens.",
	"A client can only narrow its scope here; ask an administrator for more.":                                                     "Ein Client kann seinen Scope hier nur einschränken; für mehr wenden Sie sich an einen Administrator.",
	"Approve app":                           "App freigeben",
	"This app is not waiting for approval.": "Diese App wartet nicht auf Freigabe.",

	"This app changed security-relevant settings of its registration since it was approved (see the audit log) and waits for your approval again: nobody can sign in to it, it gets no new token and the tokens it has do not work until you approve it.": "Diese App hat seit ihrer Freigabe sicherheitsrelevante Einstellungen ihrer Registrierung geändert (siehe Audit-Protokoll) und wartet erneut auf Ihre Freigabe: Bis Sie sie freigeben, kann sich niemand bei ihr anmelden, sie erhält keine neuen Tokens und ihre bisherigen Tokens funktionieren nicht.",
	"waiting for approval": "wartet auf Freigabe",

	// The consent page, to the person signing in.
	"This app registered itself; your administrator has not reviewed it.": "Diese App hat sich selbst registriert; Ihre Administration hat sie nicht geprüft.",
	"This app registered itself; your administrator approved it.":         "Diese App hat sich selbst registriert; Ihre Administration hat sie freigegeben.",

	"The application_type must be web or native.": "Der application_type muss web oder native sein.",
	"A web application's redirect URIs must use https:// (http:// only on 127.0.0.1, [::1] or localhost); custom URI schemes are for native applications.": "Die Redirect-URIs einer Webanwendung müssen https:// verwenden (http:// nur auf 127.0.0.1, [::1] oder localhost); eigene URI-Schemata sind nativen Anwendungen vorbehalten.",
	"A native application's redirect URIs must use a custom URI scheme (com.example.app:/callback) or http:// on 127.0.0.1, [::1] or localhost.":           "Die Redirect-URIs einer nativen Anwendung müssen ein eigenes URI-Schema (com.example.app:/callback) oder http:// auf 127.0.0.1, [::1] oder localhost verwenden.",
}
