package web

// deUI is German for the confirmation pages of destructive actions, the
// notices after them, the copy buttons, the sign-in page's divider, the
// profile's field details and the device summaries.
var deUI = map[string]string{
	// templates/confirm.html and the pages that use it
	"Cancel":               "Abbrechen",
	"Remove this passkey?": "Diesen Passkey entfernen?",
	"Remove passkey":       "Passkey entfernen",
	"You can no longer sign in with it. The device may still list it; you can delete it there.": "Sie können sich dann nicht mehr mit ihm anmelden. Das Gerät zeigt ihn vielleicht noch an; dort können Sie ihn löschen.",
	"It is your only passkey.": "Es ist Ihr einziger Passkey.",
	"Recovery codes":           "Wiederherstellungscodes",
	"Two-factor authentication with your authenticator app is on.": "Die Zwei-Faktor-Anmeldung mit Ihrer Authenticator-App ist an.",
	"Back to Security": "Zurück zu Sicherheit",
	"Recovery codes are shown only once, when they are made: Keyport keeps only a fingerprint of each. You have %d left. New codes replace them all, and the old ones stop working.": "Wiederherstellungscodes werden nur einmal angezeigt, wenn sie erzeugt werden: Keyport speichert nur einen Fingerabdruck von jedem. Sie haben noch %d. Neue Codes ersetzen sie alle, und die alten funktionieren nicht mehr.",
	"Sign out everywhere?": "Überall abmelden?",
	"Every browser signed in to your account is signed out, this one too, and the apps you signed in to lose their access. App passwords and API tokens keep working; revoke them on the App access page.": "Jeder Browser, der bei Ihrem Konto angemeldet ist, wird abgemeldet, auch dieser, und die Apps, bei denen Sie sich angemeldet haben, verlieren ihren Zugriff. App-Passwörter und API-Tokens funktionieren weiter; widerrufen Sie sie auf der Seite App-Zugriff.",
	"You were signed out everywhere. Sign in again to continue.": "Sie wurden überall abgemeldet. Melden Sie sich erneut an, um fortzufahren.",
	"Remove this directory?":                                     "Dieses Verzeichnis entfernen?",
	"Its settings are deleted. Its users keep their Keyport accounts, but they can no longer sign in through it until it is added again.": "Seine Einstellungen werden gelöscht. Seine Benutzer behalten ihre Keyport-Konten, können sich aber nicht mehr darüber anmelden, bis es wieder hinzugefügt wird.",
	"Remove directory":         "Verzeichnis entfernen",
	"The directory was saved.": "Das Verzeichnis wurde gespeichert.",
	"The directory was removed. Its users keep their Keyport accounts but can no longer sign in through it.": "Das Verzeichnis wurde entfernt. Seine Benutzer behalten ihre Keyport-Konten, können sich aber nicht mehr darüber anmelden.",
	"Actions":                          "Aktionen",
	"Remove this upstream provider?":   "Diesen vorgeschalteten Anbieter entfernen?",
	"Remove upstream provider":         "Vorgeschalteten Anbieter entfernen",
	"The upstream provider was saved.": "Der vorgeschaltete Anbieter wurde gespeichert.",
	"The upstream provider was removed. Its users keep their Keyport accounts but can no longer sign in through it.": "Der vorgeschaltete Anbieter wurde entfernt. Seine Benutzer behalten ihre Keyport-Konten, können sich aber nicht mehr darüber anmelden.",

	// Copy buttons (copy.js)
	"Copy":           "Kopieren",
	"Copy all codes": "Alle Codes kopieren",
	"Copied.":        "Kopiert.",
	"Copying failed: select it and copy it yourself.": "Kopieren fehlgeschlagen: Markieren Sie es und kopieren Sie es selbst.",

	// The sign-in page: password, or another way in
	"or": "oder",

	// The profile: one line per field, the rest on demand
	"Source and who sees it": "Quelle und wer es sieht",

	// Device summaries ("Firefox on Linux")
	DeviceSummary:     "%[1]s unter %[2]s",
	"Unknown browser": "Unbekannter Browser",
	"Go HTTP client":  "Go-HTTP-Client",

	// Uploads (profile.go readUpload)
	"A field of the form is too long. Reload the page and try again.": "Ein Feld des Formulars ist zu lang. Laden Sie die Seite neu und versuchen Sie es noch einmal.",
}

// DeviceSummary is the catalog key of a device summary (browser, system).
// The explicit argument indexes make it a key of its own, so no other
// "x on y" of the portal shares its translation.
const DeviceSummary = "%[1]s on %[2]s"
