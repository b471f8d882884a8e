//! Classic libpcap files (`.pcap`), nanosecond flavour, as `tcpdump -r` and
//! Wireshark read them.

use super::filter::SNAPLEN;
use super::packet::{LinkType, Packet};
use std::io::{self, Write};
use std::time::UNIX_EPOCH;

/// Magic number of a pcap file with nanosecond timestamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;

/// Writes a pcap file header and one record per packet, little-endian.
pub(crate) fn write<'a>(
    out: &mut impl Write,
    link: LinkType,
    packets: impl IntoIterator<Item = &'a Packet>,
) -> io::Result<()> {
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&MAGIC_NANOS.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
    header.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    header.extend_from_slice(&SNAPLEN.to_le_bytes());
    header.extend_from_slice(&link.pcap_linktype().to_le_bytes());
    out.write_all(&header)?;
    for packet in packets {
        let since = packet
            .timestamp()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let seconds = u32::try_from(since.as_secs()).unwrap_or(u32::MAX);
        let data = packet.data();
        let captured = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "packet larger than 4 GiB"))?;
        let original = u32::try_from(packet.original_length()).unwrap_or(u32::MAX);
        let mut record = Vec::with_capacity(16);
        record.extend_from_slice(&seconds.to_le_bytes());
        record.extend_from_slice(&since.subsec_nanos().to_le_bytes());
        record.extend_from_slice(&captured.to_le_bytes());
        record.extend_from_slice(&original.to_le_bytes());
        out.write_all(&record)?;
        out.write_all(data)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn header_and_records_follow_the_format() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let packets = [
            Packet::from_ethernet_frame(vec![1u8; 20], t),
            Packet::from_ethernet_frame(vec![2u8; 3], t + Duration::from_secs(1)),
        ];
        let mut out = Vec::new();
        write(&mut out, LinkType::Ethernet, &packets).unwrap();
        assert_eq!(out.len(), 24 + 16 + 20 + 16 + 3);
        assert_eq!(&out[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(out[16..20].try_into().unwrap()), SNAPLEN);
        assert_eq!(u32::from_le_bytes(out[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(out[24..28].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(
            u32::from_le_bytes(out[28..32].try_into().unwrap()),
            123_456_789
        );
        assert_eq!(u32::from_le_bytes(out[32..36].try_into().unwrap()), 20);
        assert_eq!(u32::from_le_bytes(out[36..40].try_into().unwrap()), 20);
        assert_eq!(&out[40..60], &[1u8; 20]);
        assert_eq!(out[60 + 16..], [2u8; 3]);

        let mut raw = Vec::new();
        write(&mut raw, LinkType::RawIp, []).unwrap();
        assert_eq!(u32::from_le_bytes(raw[20..24].try_into().unwrap()), 101);
    }
}
