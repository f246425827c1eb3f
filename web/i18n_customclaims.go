package web

// deCustomClaims is German for custom claims per app: the console's app
// page and the fixed messages of their rules (account/customclaims.go).
var deCustomClaims = map[string]string{
	"At most 32 custom claims per app.": "Höchstens 32 eigene Claims je App.",
	"A claim name is 1 to 128 characters from A-Z a-z 0-9 _ . : / -, starting with a letter.":                                                  "Ein Claim-Name hat 1 bis 128 Zeichen aus A-Z a-z 0-9 _ . : / - und beginnt mit einem Buchstaben.",
	"This claim is registered or filled by Keyport itself (such as sub, iss, aud, exp, email, email_verified or groups); choose another name.": "Dieser Claim ist registriert oder wird von Keyport selbst gesetzt (etwa sub, iss, aud, exp, email, email_verified oder groups); wählen Sie einen anderen Namen.",
	"Each claim may be mapped only once per app (names that differ only in case count as one).":                                                "Jeder Claim darf je App nur einmal zugeordnet werden (Namen, die sich nur in Groß- und Kleinschreibung unterscheiden, gelten als einer).",
	"Unknown source: use app_metadata.<key>, roles, groups or a profile field such as username, email or name.":                                "Unbekannte Quelle: Verwenden Sie app_metadata.<Schlüssel>, roles, groups oder ein Profilfeld wie username, email oder name.",
	"Name the scope that releases the claim.": "Geben Sie den Scope an, der den Claim freigibt.",
	"A scope is 1 to 64 characters from A-Z a-z 0-9 _ . : -; offline_access and the keyport: scopes cannot release claims.": "Ein Scope hat 1 bis 64 Zeichen aus A-Z a-z 0-9 _ . : -; offline_access und die keyport:-Scopes können keine Claims freigeben.",
	"The app's allowed scopes do not include this scope: add it there, or allow every scope.":                               "Die erlaubten Scopes der App enthalten diesen Scope nicht: Fügen Sie ihn dort hinzu oder erlauben Sie alle Scopes.",
	"A custom claim goes in id_token, userinfo or access_token.":                                                            "Ein eigener Claim kommt in id_token, userinfo oder access_token.",
}

// deCustomClaimsConsole is German for the console's custom claims field
// and the consent page's description of a custom scope.
var deCustomClaimsConsole = map[string]string{
	"Custom claims (one per line: claim, source, scope and, optionally, where it goes)": "Eigene Claims (einer je Zeile: Claim, Quelle, Scope und optional, wohin er kommt)",
	"For example: department app_metadata.department org id_token,userinfo. Sources: app_metadata.<key>, roles, groups or a profile field (username, email, name, ...). The scope releases the claim; a scope of the app's own becomes one it may ask for. Where: id_token, userinfo, access_token (default: id_token,userinfo).": "Zum Beispiel: department app_metadata.department org id_token,userinfo. Quellen: app_metadata.<Schlüssel>, roles, groups oder ein Profilfeld (username, email, name, …). Der Scope gibt den Claim frei; ein eigener Scope der App wird einer, den sie anfordern darf. Wohin: id_token, userinfo, access_token (Standard: id_token,userinfo).",
	"Custom claims, line %d: %s": "Eigene Claims, Zeile %d: %s",
	"Write one custom claim per line: the claim, its source, its scope and, if you like, where it goes (id_token,userinfo,access_token), separated by spaces.": "Schreiben Sie einen eigenen Claim je Zeile: den Claim, seine Quelle, seinen Scope und, wenn Sie möchten, wohin er kommt (id_token,userinfo,access_token), durch Leerzeichen getrennt.",
	"See further details about you that your administrator set up for this app":                                                                                "Weitere Angaben über Sie sehen, die Ihre Administration für diese App eingerichtet hat",
}
