//! Keys: unicode, one byte, the maximum, and what is refused.

use locksmith_core::{Error, MAX_KEY_BYTES};

use super::{Ctx, opts};

pub(crate) async fn unicode_short_and_maximum_keys(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let ascii_max = {
        let mut k = cx.key("max-");
        k.push_str(&"m".repeat(MAX_KEY_BYTES - k.len()));
        k
    };
    let multibyte_max = {
        let mut k = cx.key("max-é-");
        while k.len() + 2 <= MAX_KEY_BYTES {
            k.push('é');
        }
        k
    };
    let keys = vec![
        cx.key("ключ 🔒 {tag} 'single' \"double\" \\ % _ * ? $1 ; -- /../"),
        // One byte: shared by concurrent runs of this case, so it is only held briefly.
        "\u{7f}".to_owned(),
        ascii_max.clone(),
        multibyte_max,
    ];
    for key in &keys {
        let g = a
            .acquire(key, &opts())
            .await
            .unwrap_or_else(|e| panic!("key {key:?}: {e}"));
        assert!(
            b.try_acquire(key, &opts()).await.unwrap().is_none(),
            "{key:?} busy"
        );
        assert!(g.release().await.unwrap());
    }
    // Keys that differ only at the very end are different locks, even when hashed.
    let mut twin = ascii_max.clone();
    twin.pop();
    twin.push('n');
    let g1 = a.acquire(&ascii_max, &opts()).await.unwrap();
    let g2 = b
        .try_acquire(&twin, &opts())
        .await
        .unwrap()
        .expect("a different key is free");
    assert!(g1.release().await.unwrap() && g2.release().await.unwrap());
    assert!(
        cx.prefix().len() < 100,
        "prefix leaves room for the cases' keys"
    );
}

pub(crate) async fn invalid_keys_are_errors(cx: Ctx) {
    let a = cx.client().await;
    let over = "o".repeat(MAX_KEY_BYTES + 1);
    for (key, rule) in [
        ("", "empty"),
        (over.as_str(), "at most"),
        ("nul\0key", "NUL"),
    ] {
        let err = a.acquire(key, &opts()).await.expect_err("refused");
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
        assert!(err.to_string().contains(rule), "{err}");
        let err = a.try_acquire(key, &opts()).await.expect_err("refused");
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
        let err = a.holder(key).await.expect_err("refused");
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
    }
}
