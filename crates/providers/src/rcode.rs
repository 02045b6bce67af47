//! DNS response codes as the mnemonics operators know from `dig` (`NOERROR`, `NOTAUTH`, ...).

use hickory_proto::op::ResponseCode;

/// The mnemonic `dig` prints for a response code.
pub fn rcode_name(code: ResponseCode) -> String {
    let text = match u16::from(code) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        other => return format!("RCODE{other}"),
    };
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_dig() {
        assert_eq!(rcode_name(ResponseCode::NotAuth), "NOTAUTH");
        assert_eq!(rcode_name(ResponseCode::Refused), "REFUSED");
        assert_eq!(rcode_name(ResponseCode::NXDomain), "NXDOMAIN");
        assert_eq!(rcode_name(<ResponseCode as From<u16>>::from(23)), "RCODE23");
    }
}
