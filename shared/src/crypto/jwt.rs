//! jsonwebtoken's signatures on ring. The verifier accepts HS256, RS256 and ES256 only
//! (`auth::Verifier`); signing covers what dev tokens and the tests mint. Anything else is an
//! `InvalidAlgorithm` error, never a panic.

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::jwk::{EllipticCurve, ThumbprintHash};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, KeyPair, RsaKeyPair};
use ring::{digest, hmac};

pub(super) static RING: CryptoProvider = CryptoProvider {
    signer_factory: signer,
    verifier_factory: verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: rsa_components,
        rsa_pub_components_from_public_key: |_| Err(unsupported()),
        ec_pub_components_from_private_key: ec_components,
        ed_pub_components_from_private_key: |_, _| Err(unsupported()),
        compute_digest: thumbprint_digest,
    },
};

fn unsupported() -> jsonwebtoken::errors::Error {
    ErrorKind::InvalidAlgorithm.into()
}

enum SigningKey {
    Hmac(hmac::Key),
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
}

struct RingSigner {
    alg: Algorithm,
    key: SigningKey,
}

fn signer(alg: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let bytes = key.as_bytes();
    let signing_key = match (alg, key.family()) {
        (Algorithm::HS256, AlgorithmFamily::Hmac) => SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA256, bytes)),
        (Algorithm::HS384, AlgorithmFamily::Hmac) => SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA384, bytes)),
        (Algorithm::HS512, AlgorithmFamily::Hmac) => SigningKey::Hmac(hmac::Key::new(hmac::HMAC_SHA512, bytes)),
        (Algorithm::RS256, AlgorithmFamily::Rsa) => SigningKey::Rsa(rsa_key_pair(bytes)?),
        (Algorithm::ES256, AlgorithmFamily::Ec) => SigningKey::Ecdsa(
            EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, bytes, &SystemRandom::new())
                .map_err(|_| ErrorKind::InvalidEcdsaKey)?,
        ),
        (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 | Algorithm::RS256 | Algorithm::ES256, _) => {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        _ => return Err(unsupported()),
    };
    Ok(Box::new(RingSigner {
        alg: *alg,
        key: signing_key,
    }))
}

impl Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignatureError> {
        let rng = SystemRandom::new();
        match &self.key {
            SigningKey::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            SigningKey::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(|_| SignatureError::new())?;
                Ok(signature)
            }
            SigningKey::Ecdsa(pair) => Ok(pair
                .sign(&rng, message)
                .map_err(|_| SignatureError::new())?
                .as_ref()
                .to_vec()),
        }
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

fn verifier(alg: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let family = match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::RS256 => AlgorithmFamily::Rsa,
        Algorithm::ES256 => AlgorithmFamily::Ec,
        _ => return Err(unsupported()),
    };
    if key.family() != family {
        return Err(ErrorKind::InvalidKeyFormat.into());
    }
    Ok(Box::new(RingVerifier {
        alg: *alg,
        key: key.clone(),
    }))
}

impl Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, message: &[u8], signature: &Vec<u8>) -> std::result::Result<(), SignatureError> {
        let refused = || SignatureError::new();
        match (self.alg, self.key.kind()) {
            (Algorithm::RS256, DecodingKeyKind::RsaModulusExponent { n, e }) => sig::RsaPublicKeyComponents { n, e }
                .verify(&sig::RSA_PKCS1_2048_8192_SHA256, message, signature)
                .map_err(|_| refused()),
            (Algorithm::RS256, DecodingKeyKind::SecretOrDer(der)) => {
                sig::UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA256, der)
                    .verify(message, signature)
                    .map_err(|_| refused())
            }
            (Algorithm::ES256, DecodingKeyKind::SecretOrDer(point)) => {
                sig::UnparsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .map_err(|_| refused())
            }
            (alg, DecodingKeyKind::SecretOrDer(secret)) => {
                let algorithm = match alg {
                    Algorithm::HS256 => hmac::HMAC_SHA256,
                    Algorithm::HS384 => hmac::HMAC_SHA384,
                    Algorithm::HS512 => hmac::HMAC_SHA512,
                    _ => return Err(refused()),
                };
                hmac::verify(&hmac::Key::new(algorithm, secret), message, signature).map_err(|_| refused())
            }
            _ => Err(refused()),
        }
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

/// PKCS#8 (what `EncodingKey::from_rsa_pem` reads from `BEGIN PRIVATE KEY`) or PKCS#1 DER.
fn rsa_key_pair(der: &[u8]) -> Result<RsaKeyPair> {
    RsaKeyPair::from_pkcs8(der)
        .or_else(|_| RsaKeyPair::from_der(der))
        .map_err(|err| ErrorKind::InvalidRsaKey(err.to_string()).into())
}

fn rsa_components(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let pair = rsa_key_pair(der)?;
    let public = sig::RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
    Ok((public.n, public.e))
}

fn ec_components(der: &[u8], alg: Algorithm) -> Result<(EllipticCurve, Vec<u8>, Vec<u8>)> {
    if alg != Algorithm::ES256 {
        return Err(unsupported());
    }
    let pair = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der, &SystemRandom::new())
        .map_err(|_| ErrorKind::InvalidEcdsaKey)?;
    // An uncompressed point: 0x04, then x and y, 32 bytes each.
    let point = pair.public_key().as_ref();
    let (x, y) = point[1..].split_at(32);
    Ok((EllipticCurve::P256, x.to_vec(), y.to_vec()))
}

fn thumbprint_digest(data: &[u8], hash: ThumbprintHash) -> Result<Vec<u8>> {
    let algorithm = match hash {
        ThumbprintHash::SHA256 => &digest::SHA256,
        ThumbprintHash::SHA384 => &digest::SHA384,
        ThumbprintHash::SHA512 => &digest::SHA512,
        _ => return Err(unsupported()),
    };
    Ok(digest::digest(algorithm, data).as_ref().to_vec())
}
