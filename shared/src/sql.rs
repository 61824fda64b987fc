//! SQL text helpers. Every identifier that reaches SQL text goes through [`quote_ident`];
//! data values never do (they travel in Parquet files or as named statement parameters).

use crate::value::{ColumnType, Field};

/// Quotes one identifier part with backticks, doubling any backtick inside it, so that any
/// column or table name (spaces, dots, backticks, keywords) is taken literally.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// Parses a Databricks/Spark SQL type name as `DESCRIBE TABLE` prints it (`bigint`,
/// `decimal(10,2)`, `array<string>`, `struct<a:int,b:struct<c:string>>`, `timestamp`), back
/// into a [`ColumnType`]. Types deltasink never writes (e.g. `map<…>`, `interval`) are an
/// error naming the type.
pub fn parse_type(text: &str) -> Result<ColumnType, String> {
    let mut parser = TypeParser { text, pos: 0 };
    let ty = parser.parse()?;
    parser.skip_space();
    if parser.pos != text.len() {
        return Err(format!("unexpected text after the type in {text:?}"));
    }
    Ok(ty)
}

struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
}

impl TypeParser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.rest().starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(self.rest().len());
        let w = self.rest()[..len].to_ascii_lowercase();
        self.pos += len;
        w
    }

    fn number(&mut self) -> Result<i64, String> {
        let w = self.word();
        w.parse()
            .map_err(|_| format!("expected a number in {:?}, got {w:?}", self.text))
    }

    fn field_name(&mut self) -> Result<String, String> {
        self.skip_space();
        if self.eat('`') {
            let mut name = String::new();
            loop {
                let c = self
                    .rest()
                    .chars()
                    .next()
                    .ok_or_else(|| format!("unclosed backtick in {:?}", self.text))?;
                self.pos += c.len_utf8();
                if c == '`' {
                    if self.rest().starts_with('`') {
                        self.pos += 1;
                        name.push('`');
                        continue;
                    }
                    return Ok(name);
                }
                name.push(c);
            }
        }
        let len = self
            .rest()
            .find(':')
            .ok_or_else(|| format!("expected `name: type` inside a struct in {:?}", self.text))?;
        let name = self.rest()[..len].trim().to_string();
        self.pos += len;
        Ok(name)
    }

    fn parse(&mut self) -> Result<ColumnType, String> {
        let word = self.word();
        Ok(match word.as_str() {
            "boolean" => ColumnType::Boolean,
            "tinyint" | "byte" | "smallint" | "short" | "int" | "integer" => ColumnType::Int32,
            "bigint" | "long" => ColumnType::Int64,
            "float" | "real" => ColumnType::Float32,
            "double" => ColumnType::Float64,
            "string" | "varchar" | "char" => {
                if self.eat('(') {
                    self.number()?;
                    if !self.eat(')') {
                        return Err(format!("unclosed length in {:?}", self.text));
                    }
                }
                ColumnType::String
            }
            "binary" => ColumnType::Binary,
            "date" => ColumnType::Date,
            "timestamp" | "timestamp_ltz" => ColumnType::Timestamp,
            "decimal" | "numeric" | "dec" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat('(') {
                    precision = self.number()?;
                    if self.eat(',') {
                        scale = self.number()?;
                    }
                    if !self.eat(')') {
                        return Err(format!("unclosed decimal in {:?}", self.text));
                    }
                }
                ColumnType::Decimal {
                    precision: u8::try_from(precision)
                        .map_err(|_| "decimal precision out of range")?,
                    scale: i8::try_from(scale).map_err(|_| "decimal scale out of range")?,
                }
            }
            "array" => {
                if !self.eat('<') {
                    return Err(format!("expected array<...> in {:?}", self.text));
                }
                let element = self.parse()?;
                if !self.eat('>') {
                    return Err(format!("unclosed array in {:?}", self.text));
                }
                ColumnType::List(Box::new(element))
            }
            "struct" => {
                if !self.eat('<') {
                    return Err(format!("expected struct<...> in {:?}", self.text));
                }
                let mut fields = Vec::new();
                if !self.eat('>') {
                    loop {
                        let name = self.field_name()?;
                        if !self.eat(':') {
                            return Err(format!("expected `:` after {name:?} in {:?}", self.text));
                        }
                        let ty = self.parse()?;
                        // Optional NOT NULL / COMMENT '...' are not produced by deltasink.
                        fields.push(Field::new(name, ty));
                        if self.eat('>') {
                            break;
                        }
                        if !self.eat(',') {
                            return Err(format!("expected `,` or `>` in {:?}", self.text));
                        }
                    }
                }
                ColumnType::Struct(fields)
            }
            other => {
                return Err(format!(
                    "unsupported column type {other:?} in {:?}",
                    self.text
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_sql_name_writes() {
        let types = [
            ColumnType::Boolean,
            ColumnType::Int32,
            ColumnType::Int64,
            ColumnType::Float32,
            ColumnType::Float64,
            ColumnType::Decimal {
                precision: 12,
                scale: 2,
            },
            ColumnType::String,
            ColumnType::Binary,
            ColumnType::Date,
            ColumnType::Timestamp,
            ColumnType::List(Box::new(ColumnType::String)),
            ColumnType::Struct(vec![
                Field::new("a b", ColumnType::Int64),
                Field::new("we`ird", ColumnType::List(Box::new(ColumnType::Date))),
            ]),
        ];
        for ty in types {
            assert_eq!(parse_type(&ty.sql_name()).unwrap(), ty, "{}", ty.sql_name());
        }
    }

    #[test]
    fn parses_describe_spellings() {
        assert_eq!(parse_type("bigint").unwrap(), ColumnType::Int64);
        assert_eq!(
            parse_type("decimal(10,2)").unwrap(),
            ColumnType::Decimal {
                precision: 10,
                scale: 2
            }
        );
        assert_eq!(
            parse_type("struct<city:string,zip:int>").unwrap(),
            ColumnType::Struct(vec![
                Field::new("city", ColumnType::String),
                Field::new("zip", ColumnType::Int32)
            ])
        );
        assert!(parse_type("map<string,int>").unwrap_err().contains("map"));
        assert!(parse_type("array<int").is_err());
    }

    #[test]
    fn quotes_and_escapes_backticks() {
        assert_eq!(quote_ident("plain"), "`plain`");
        assert_eq!(quote_ident("a.b c"), "`a.b c`");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }
}
