//! The XMP packet of a result: the original's (captions, people, keywords — what family archives
//! carry), with one entry added to its history (`xmpMM:History`) that says what gpen-studio did.
//! Only that entry is added; nothing of the original packet is rewritten. The entry has no time
//! (`stEvt:when`): the same photo restored twice is the same file, so a resumed or sharded run
//! writes what one run would have, byte for byte.

const RESOURCE_EVENT: &str = "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#";

/// One `stEvt` entry of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    /// XMP's word for it: `edited` (faces restored, the photo upscaled) or `saved` (re-encoded).
    pub action: &'static str,
    /// What was done, with what (file names, not paths: a result may travel).
    pub parameters: String,
}

/// `original` (an XMP packet) with `entry` appended to its history, or a new packet holding only
/// the history when there is none. A packet that is not UTF-8 XML with an `rdf:RDF` element comes
/// back unchanged.
pub fn with_history(original: Option<&[u8]>, entry: &HistoryEntry, agent: &str) -> Vec<u8> {
    let item = format!(
        "<rdf:li xmlns:stEvt=\"{RESOURCE_EVENT}\" stEvt:action=\"{}\" stEvt:softwareAgent=\"{}\" stEvt:parameters=\"{}\"/>",
        entry.action,
        escape(agent),
        escape(&entry.parameters)
    );
    let history = format!(
        "<rdf:Description rdf:about=\"\" xmlns:xmpMM=\"http://ns.adobe.com/xap/1.0/mm/\">\
         <xmpMM:History><rdf:Seq>{item}</rdf:Seq></xmpMM:History></rdf:Description>"
    );
    let Some(original) = original else {
        return format!(
            "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\
             <x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
             {history}</rdf:RDF></x:xmpmeta><?xpacket end=\"w\"?>"
        )
        .into_bytes();
    };
    let Ok(text) = std::str::from_utf8(original) else { return original.to_vec() };
    // A history already there gets the entry at its end; otherwise a description of its own.
    if let Some(start) = text.find("<xmpMM:History>")
        && let Some(end) = text[start..].find("</rdf:Seq>")
    {
        let at = start + end;
        return format!("{}{item}{}", &text[..at], &text[at..]).into_bytes();
    }
    match text.rfind("</rdf:RDF>") {
        Some(at) => format!("{}{history}{}", &text[..at], &text[at..]).into_bytes(),
        None => original.to_vec(),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> HistoryEntry {
        HistoryEntry { action: "edited", parameters: "restored 2 faces with GPEN-BFR-512.pth & \"more\"".into() }
    }

    #[test]
    fn the_original_packet_keeps_everything_and_gains_one_history_entry() {
        let caption = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\
            <rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><dc:description>Grandma, 1931</dc:description>\
            </rdf:Description></rdf:RDF></x:xmpmeta>";
        let out = String::from_utf8(with_history(Some(caption.as_bytes()), &entry(), "gpen-studio 1.0")).unwrap();
        assert!(out.contains("<dc:description>Grandma, 1931</dc:description>"), "{out}");
        assert!(out.contains("stEvt:parameters=\"restored 2 faces with GPEN-BFR-512.pth &amp; &quot;more&quot;\""), "{out}");
        assert_eq!(out.matches("<xmpMM:History>").count(), 1);
        // A second run adds to the same history.
        let again = String::from_utf8(with_history(Some(out.as_bytes()), &entry(), "gpen-studio 1.0")).unwrap();
        assert_eq!((again.matches("<xmpMM:History>").count(), again.matches("<rdf:li").count()), (1, 2), "{again}");
        // Not XMP at all: left as it was.
        assert_eq!(with_history(Some(b"\xff\xfe"), &entry(), "x"), b"\xff\xfe");
    }
}
