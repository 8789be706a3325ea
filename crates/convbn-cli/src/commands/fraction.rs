//! Numbers given as fractions on the command line (`--eps 4/255`).

/// Parse `"4/255"`, `"0.5"` or `"2"` as a number.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (
                a.trim()
                    .parse()
                    .map_err(|_| format!("'{s}' is not a number"))?,
                b.trim()
                    .parse()
                    .map_err(|_| format!("'{s}' is not a number"))?,
            );
            if b == 0.0 {
                return Err(format!("'{s}' divides by zero"));
            }
            a / b
        }
        None => s
            .trim()
            .parse()
            .map_err(|_| format!("'{s}' is not a number"))?,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("'{s}' is not a finite number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_parse() {
        assert_eq!(parse_fraction("4/255").unwrap(), 4.0 / 255.0);
        assert_eq!(parse_fraction("0.5").unwrap(), 0.5);
        assert!(parse_fraction("1/0").is_err());
        assert!(parse_fraction("x").is_err());
    }
}
