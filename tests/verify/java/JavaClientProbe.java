// A Java TLS client configured like the instance's outbound mutual TLS: a JKS keystore through the SunX509 key
// manager. It trusts any server (only client-certificate selection is under test), sends one request and prints
// "OK <status line>" or "ERROR <exception>". Run as: java JavaClientProbe.java KEYSTORE PASSWORD PORT
import java.io.*;
import java.net.*;
import java.security.*;
import java.security.cert.X509Certificate;
import javax.net.ssl.*;

public class JavaClientProbe {
    public static void main(String[] args) throws Exception {
        char[] password = args[1].toCharArray();
        KeyStore store = KeyStore.getInstance("JKS");
        try (InputStream in = new FileInputStream(args[0])) { store.load(in, password); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("SunX509");
        kmf.init(store, password);
        TrustManager[] trustAll = { new X509TrustManager() {
            public void checkClientTrusted(X509Certificate[] c, String a) {}
            public void checkServerTrusted(X509Certificate[] c, String a) {}
            public X509Certificate[] getAcceptedIssuers() { return new X509Certificate[0]; }
        } };
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), trustAll, null);
        try (SSLSocket socket = (SSLSocket) ctx.getSocketFactory().createSocket("127.0.0.1", Integer.parseInt(args[2]))) {
            socket.setSoTimeout(5000);
            socket.startHandshake();
            OutputStream out = socket.getOutputStream();
            out.write("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n".getBytes("US-ASCII"));
            out.flush();
            BufferedReader reader = new BufferedReader(new InputStreamReader(socket.getInputStream(), "US-ASCII"));
            System.out.println("OK " + reader.readLine());
        } catch (IOException e) {
            System.out.println("ERROR " + e);
        }
    }
}
